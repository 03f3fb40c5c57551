package runtime

import (
	goruntime "runtime"
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
	n        int
	task     Task
	parts    int
	epoch    atomic.Uint64 // the current task's epoch (epochMask bits); a new one announces a task
	wakes    atomic.Uint64 // Wake calls: a new one restarts the waiting threads' spin
	done     atomic.Int64  // parts finished in the current epoch
	chunks   []chunk       // per thread: the parts it runs first
	serial   int64         // Parts runs less work than this on one thread; < 0: serialFor(level())
	colSplit bool          // the last GEMM split its columns between the threads (Depthwise follows it)
	halo     haloTask      // Tensor.ZeroHaloOn's task
	gap      Task          // GlobalAvgPoolOn's task (a *gapTask, made on first use; pool.go, which defines it, ships only with programs that pool)
	workers  []*worker
	closed   atomic.Bool
}

// chunk is a thread's contiguous range of a task's parts: the owner takes
// parts from the front, other threads, once their own range is done, steal
// from the back. Thread t's range is the t-th fraction of the parts, and
// kernels map parts to rows (or tiles) in order, so a thread works on the
// same region of every layer and reads what it wrote the layer before from
// its own cache rather than from another core's.
type chunk struct {
	w atomic.Uint64 // epoch<<40 | lo<<20 | hi: parts [lo, hi) are unclaimed
	_ [56]byte
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
	p := &Pool{n: n, chunks: make([]chunk, n), serial: -1}
	for i := 1; i < n; i++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.loop(w, i)
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

// Parts suggests how many parts to split units of work into, work being
// the task's multiply-adds (0: unknown): one on a single thread or for
// less than serialFor's threshold, else up to four per thread, so that
// threads that start late still share the work, and no more than give
// each part minPartWork.
func (p *Pool) Parts(units int, work int64) int {
	n := p.Threads()
	if n == 1 {
		return 1
	}
	serial := p.serial
	if serial < 0 {
		serial = serialFor(level())
	}
	if work > 0 && work < serial {
		return 1
	}
	return p.split(units, work)
}

// split is Parts without the serial threshold.
func (p *Pool) split(units int, work int64) int {
	n := p.Threads()
	if n == 1 {
		return 1
	}
	parts := min(units, 4*n)
	if work > 0 {
		parts = min(parts, int(work/minPartWork))
	}
	return max(1, parts)
}

// minPartWork is the least work, in multiply-adds, given a part of its
// own: 32Ki (32,768). Handing a part to another thread costs about a
// microsecond (the claim, the done count and the cache lines of the data
// crossing cores), the time of a few tens of thousands of multiply-adds of
// a SIMD kernel, so a smaller part would cost about as much to hand over as
// to run.
const minPartWork = 32 << 10

// serialWork is the work, in multiply-adds, below which a task runs on the
// calling thread alone with the AVX-512 kernels: about 10 µs of work.
// Measured on the Intel Xeon (AVX-512, 2 cores) with 2 threads,
// whole-network medians of 3 rounds of interleaved runs (µs):
//
//	threshold (multiply-adds)      0    128Ki  256Ki  512Ki  1Mi   | 1 thread
//	28x28 MBConv net, AVX-512      160  163    162    159    156   | 153
//	models/fmnist, AVX-512         149  152    145    142    126   | 124
//	28x28 MBConv net, AVX2         177  181    182    185    212   | 211
//	models/fmnist, AVX2            159  167    165    170    166   | 163
//
// With the AVX-512 kernels a layer this small gains nothing from a second
// core on this CPU, and the next layers lose reading what the parts wrote
// in the other core's cache; with AVX2 every split pays, so the threshold
// is for AVX-512 only. ProxylessNAS-mobile, whose layers are larger, was
// unchanged. On an AMD Zen 4, whose AVX-512 runs at the AVX2 rate (its
// 512-bit operations are two 256-bit halves), every split paid as with
// AVX2: without the threshold the 28x28 net took 0.79-0.83x as long on 2
// threads with AVX-512, the 224x224 nets 0.98-0.99x (docs/perf.md). So it
// applies to Intel CPUs only.
const serialWork = 1 << 20

// serialFor is the work below which a task runs on one thread with the
// kernels of level l: serialWork for the amd64 AVX-512 kernels on an Intel
// CPU, where it was measured to pay; 0 (every task split) for AVX-512 on
// other CPUs, AVX2, the portable kernels and NEON.
func serialFor(l int) int64 {
	if goruntime.GOARCH == "amd64" && l >= levelAVX512 && isIntel {
		return serialWork
	}
	return 0
}

// maxParts bounds the parts of one Run and epochMask the epochs (they
// wrap): a chunk word holds an epoch and two part indices.
const (
	maxParts  = 1<<20 - 1
	epochMask = 1<<24 - 1
)

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
	p.task, p.parts = t, parts
	p.done.Store(0)
	epoch := (p.epoch.Load() + 1) & epochMask
	for i := range p.chunks {
		lo, hi := span(parts, i, p.n)
		p.chunks[i].w.Store(epoch<<40 | uint64(lo)<<20 | uint64(hi))
	}
	p.epoch.Store(epoch)
	for _, w := range p.workers {
		if w.state.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
	p.work(epoch, 0)
	var w waiter
	for p.done.Load() != int64(parts) {
		w.wait()
	}
	p.task = nil
}

// work runs parts of the task of the given epoch as thread self: its own
// range from the front, then the other threads' from the back, until none
// is left.
func (p *Pool) work(epoch uint64, self int) {
	for k := 0; k < p.n; k++ {
		c := &p.chunks[(self+k)%p.n].w
		own := k == 0
		for {
			v := c.Load()
			lo, hi := int(v>>20&maxParts), int(v&maxParts)
			if v>>40 != epoch || lo >= hi {
				break
			}
			part, next := hi-1, v-1
			if own {
				part, next = lo, v+1<<20
			}
			if !c.CompareAndSwap(v, next) {
				continue
			}
			// The claim succeeded while the epoch's parts were
			// unfinished, so p.task and p.parts are still this epoch's.
			p.task.Do(part, p.parts)
			p.done.Add(1)
		}
	}
}

// Wake brings parked threads back to waiting on their cores, and restarts
// the spin of those still waiting, so that the next Run starts on all of
// them at once. Threads park after spinFor idle
// (between inferences), and a parked thread takes tens to hundreds of
// microseconds to run again: on a Zen 4 VM the first layer of a 224x224
// network, split across 2 threads, took as long as on one thread when
// its worker was parked (MobileNetV2's fused stem: 395 µs, 287 µs with the
// worker awake). A program calls it when an inference starts, before it
// prepares the input, so that the waking overlaps that work. Like Run,
// it must not be called concurrently with the pool's other methods.
func (p *Pool) Wake() {
	if p == nil {
		return
	}
	p.wakes.Add(1) // threads still spinning spin spinFor more
	for _, w := range p.workers {
		if w.state.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
}

// Close stops the pool's goroutines. The pool must be idle.
func (p *Pool) Close() {
	if p == nil || p.closed.Swap(true) {
		return
	}
	p.epoch.Store((p.epoch.Load() + 1) & epochMask)
	for _, w := range p.workers {
		if w.state.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
}

func (p *Pool) loop(w *worker, self int) {
	var seen uint64 // the epoch at NewPool; a late start must not skip the first task
	for {
		// Spin, then park, until the epoch moves; Wake restarts the spin.
		var wt waiter
		woke := p.wakes.Load()
		for p.epoch.Load() == seen {
			if v := p.wakes.Load(); v != woke {
				woke, wt = v, waiter{}
			}
			if wt.wait() < spinFor {
				continue
			}
			w.state.Store(1)
			if p.epoch.Load() != seen {
				if !w.state.CompareAndSwap(1, 0) {
					<-w.wake // Run already sent a token
				}
				break
			}
			<-w.wake
			// Woken by Run or Close, whose epoch ends the loop, or by
			// Wake ahead of a task: spin again.
			wt = waiter{}
		}
		if p.closed.Load() {
			return
		}
		seen = p.epoch.Load()
		p.work(seen, self)
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
