//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package targets

import "os"

// lockFile is a no-op where pnas has no advisory lock: appends then rely on
// O_APPEND alone, and an append racing another may see its last line half
// written and refuse.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}
