//go:build !linux

package runtime

import "runtime"

// osYield lets other goroutines run; off Linux there is no portable way to
// yield the OS thread itself.
func osYield() { runtime.Gosched() }
