package buffer

// Fails the build on 32-bit targets (see internal/only64 and arch32.go).
import _ "github.com/shopkit/relay/buffer/internal/only64"
