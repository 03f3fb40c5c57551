//go:build linux

package runtime

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time the calling OS thread has used; callers
// lock the goroutine to its thread. On a shared machine it measures a
// single-threaded kernel without the time other processes took.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
