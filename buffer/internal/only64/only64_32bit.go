//go:build 386 || arm || mips || mipsle

package only64

// Badger silently loses data on 32-bit platforms (dependencies reference:
// 20k records written, 0 after reopen). Refuse to build there.
var _ = relay_requires_a_64_bit_os_badger_loses_data_on_32_bit
