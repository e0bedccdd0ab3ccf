// Command stub stands in for relayd and relayctl in the packaging test while the real ones are
// built elsewhere: a static binary that says what it is.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() { fmt.Println(filepath.Base(os.Args[0]), "packaging stand-in") }
