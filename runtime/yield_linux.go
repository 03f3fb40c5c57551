package runtime

import "syscall"

// osYield gives the CPU to another runnable OS thread, if any. A waiting
// pool thread calls it so that, when the machine is oversubscribed, it does
// not take the core from the thread it is waiting for.
func osYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
