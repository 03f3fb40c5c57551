package runtime

import (
	"sync/atomic"
	"time"
)

// Task is work that a Pool splits into parts: Do(part, parts) is called
// exactly once for every part in [0, parts), on any of the pool's threads,
// possibly concurrently.
type Task interface {
	Do(part, parts int)
}

// Waits spin hot for spinHot (layers of a forward pass follow each other
// within microseconds, so workers stay on their cores for a whole
// inference), then yield the OS thread on every check (on an oversubscribed
// machine a waiter should not hold a core another thread needs), and an
// idle worker parks after spinFor (between inferences).
const (
	spinHot = 50 * time.Microsecond
	spinFor = 300 * time.Microsecond
)

// Pool is a fixed set of threads that run one Task at a time. Thread 0 is
// the caller of Run; the others are goroutines that spin briefly between
// tasks and then park. Threads claim parts one at a time, so a thread that
// is slow to wake or descheduled leaves its share to the others. A Pool
// must not be used by two goroutines at once. Run allocates nothing.
//
// A nil *Pool is valid and runs every task on the caller alone.
type Pool struct {
	n       int
	task    Task
	claim   atomic.Uint64 // epoch<<40 | parts<<20 | next unclaimed part
	done    atomic.Int64  // parts finished in the current epoch
	workers []*worker
	closed  atomic.Bool
}

type worker struct {
	state atomic.Int32 // 0 running or spinning, 1 parked
	wake  chan struct{}
	_     [48]byte // keep workers' hot fields on separate cache lines
}

// NewPool starts a pool of n threads (n-1 goroutines plus the caller).
// n < 1 means 1. Close it to stop the goroutines.
func NewPool(n int) *Pool {
	if n < 1 {
		n = 1
	}
	p := &Pool{n: n}
	for i := 1; i < n; i++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.loop(w)
	}
	return p
}

// Threads is the number of threads the pool runs a task on.
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.n
}

// Parts suggests how many parts to split units of work into: one per
// thread on a single thread, else up to four per thread, so that threads
// that start late still share the work.
func (p *Pool) Parts(units int) int {
	if n := p.Threads(); n > 1 {
		return max(1, min(units, 4*n))
	}
	return 1
}

// maxParts bounds the parts of one Run: they share a word with the epoch.
const maxParts = 1<<20 - 1

// Run calls t.Do(i, parts) for every i in [0, parts) across the pool's
// threads, the caller included, and returns when all parts are done.
// parts above 2^20-1 are capped.
func (p *Pool) Run(t Task, parts int) {
	parts = min(parts, maxParts)
	if parts <= 0 {
		return
	}
	if p == nil || p.n == 1 || parts == 1 {
		for i := 0; i < parts; i++ {
			t.Do(i, parts)
		}
		return
	}
	p.task = t
	p.done.Store(0)
	epoch := p.claim.Load()>>40 + 1
	p.claim.Store(epoch<<40 | uint64(parts)<<20)
	for _, w := range p.workers {
		if w.state.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
	p.work(epoch)
	var w waiter
	for p.done.Load() != int64(parts) {
		w.wait()
	}
	p.task = nil
}

// work claims and runs parts of the task of the given epoch until none is
// left.
func (p *Pool) work(epoch uint64) {
	for {
		c := p.claim.Load()
		parts, i := int(c>>20&maxParts), int(c&maxParts)
		if c>>40 != epoch || i >= parts {
			return
		}
		if !p.claim.CompareAndSwap(c, c+1) {
			continue
		}
		// The claim succeeded while the epoch's parts were unfinished, so
		// p.task is still this epoch's task.
		p.task.Do(i, parts)
		p.done.Add(1)
	}
}

// Close stops the pool's goroutines. The pool must be idle.
func (p *Pool) Close() {
	if p == nil || p.closed.Swap(true) {
		return
	}
	p.claim.Add(1 << 40)
	for _, w := range p.workers {
		if w.state.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
}

func (p *Pool) loop(w *worker) {
	var seen uint64 // the epoch at NewPool; a late start must not skip the first task
	for {
		// Spin, then park, until the epoch moves.
		var wt waiter
		for p.claim.Load()>>40 == seen {
			if wt.wait() < spinFor {
				continue
			}
			w.state.Store(1)
			if p.claim.Load()>>40 != seen {
				if !w.state.CompareAndSwap(1, 0) {
					<-w.wake // Run already sent a token
				}
				break
			}
			<-w.wake
			break
		}
		if p.closed.Load() {
			return
		}
		seen = p.claim.Load() >> 40
		p.work(seen)
	}
}

// waiter paces a wait loop: wait is called once per check and returns the
// time waited so far, measured every 64 checks.
type waiter struct {
	n       int
	start   time.Time
	elapsed time.Duration
}

func (w *waiter) wait() time.Duration {
	w.n++
	if w.n&63 == 0 {
		if w.start.IsZero() {
			w.start = time.Now()
		}
		w.elapsed = time.Since(w.start)
	}
	if w.elapsed >= spinHot {
		osYield()
	}
	return w.elapsed
}

// span splits [0, n) into parts nearly equal ranges and returns range i.
func span(n, i, parts int) (lo, hi int) {
	return n * i / parts, n * (i + 1) / parts
}
