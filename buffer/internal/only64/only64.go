// Package only64 is imported by buffer for its build constraints only: it
// has no dependencies, so a 32-bit build fails here at once, with a name
// that says why, before any of Badger is compiled.
package only64

// OK is true on the platforms relay supports (64-bit).
const OK = true
