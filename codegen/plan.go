package codegen

import (
	"fmt"
	"sort"
)

// arenaAlign is the alignment of every buffer in the activation arena, in
// floats (64 bytes: one cache line, one AVX-512 vector).
const arenaAlign = 16

// MemoryPlan is where every activation buffer of a compiled model lives in
// its one activation arena.
//
// A buffer is live from the op that first writes it to the last op that
// reads it; buffers live at the same op never overlap. The arena holds the
// model input too. Bytes is never below LowerBound, the largest total size
// of the buffers live during any one op. The planner tries several greedy
// placements and, when none reaches the bound, a bounded search over the
// ends of the free gaps, which finds the alternating placement that chains
// of blocks need.
type MemoryPlan struct {
	Bytes      int64 // arena size
	LowerBound int64 // max over ops of the bytes of the buffers live during it
	// IRPeak is the model's ir.Stats().PeakActivationBytes: the same
	// liveness over unpadded IR tensors, each its own buffer.
	IRPeak int64
	// Overhead bounds what the runtime layout adds to IRPeak: the max over
	// ops of the padding (channel stride, halo, alignment) of the buffers
	// live during it. Bytes <= IRPeak + Overhead whenever Bytes equals
	// LowerBound, since an in-place output or a view never adds bytes.
	Overhead int64
	Buffers  int // number of buffers (rt.Tensor values)
	Tensors  int // number of IR tensors, the input included
}

func (p MemoryPlan) String() string {
	return fmt.Sprintf("activation arena %d bytes in %d buffers for %d tensors (IR peak %d bytes; layout padding up to %d bytes; lower bound %d bytes)",
		p.Bytes, p.Buffers, p.Tensors, p.IRPeak, p.Overhead, p.LowerBound)
}

func overlaps(a, b *buffer) bool { return a.def <= b.last && b.def <= a.last }

// plan places the buffers in the arena and marks the ones whose halo may
// hold stale values from another buffer.
func (l *lowered) plan() (MemoryPlan, error) {
	st, err := l.m.Stats()
	if err != nil {
		return MemoryPlan{}, err
	}
	var real []int // the buffers the arena holds (not virtual)
	for i, b := range l.bufs {
		b.floats = 0
		if !b.virtual {
			b.floats = (b.tensorLen() + arenaAlign - 1) / arenaAlign * arenaAlign
			real = append(real, i)
		}
	}
	n := len(real)
	best, bestOffs := -1, []int(nil)
	for _, less := range placementOrders {
		order := append([]int(nil), real...)
		sort.SliceStable(order, func(i, j int) bool { return less(l.bufs[order[i]], l.bufs[order[j]]) })
		for _, bestFit := range []bool{false, true} {
			offs, size := l.place(order, bestFit)
			if best < 0 || size < best {
				best, bestOffs = size, offs
			}
		}
	}
	// The greedy orders can miss the lower bound (a chain of buffers must
	// alternate between the two ends of the arena); a bounded search over
	// gap ends in first-use order then looks for a placement within it.
	lb := l.lowerBound()
	if best > lb {
		order := append([]int(nil), real...)
		sort.SliceStable(order, func(i, j int) bool { return l.bufs[order[i]].def < l.bufs[order[j]].def })
		offs := make([]int, len(l.bufs))
		budget := searchBudget
		if l.search(order, 0, offs, lb, &budget) {
			best, bestOffs = lb, offs
		}
	}
	for i, b := range l.bufs {
		b.off = bestOffs[i]
	}
	// Dirty buffers share arena floats with another buffer.
	for i, a := range l.bufs {
		for j, b := range l.bufs {
			if i != j && !a.virtual && !b.virtual && a.off < b.off+b.floats && b.off < a.off+a.floats {
				a.dirty = true
			}
		}
		a.zeroHalo = a.dirty && a.pad > 0 && i != l.tensors[l.input].buf
	}
	l.keepCleanHalos()
	p := MemoryPlan{Bytes: int64(best) * 4, LowerBound: int64(lb) * 4, IRPeak: st.PeakActivationBytes,
		Buffers: n, Tensors: len(l.tensors)}
	for op := -1; op <= len(l.m.Ops); op++ {
		var pad int64
		for _, b := range l.bufs {
			if !b.virtual && b.def <= op && op <= b.last {
				pad += int64(b.floats)*4 - int64(b.raw)
			}
		}
		p.Overhead = max(p.Overhead, pad)
	}
	return p, nil
}

// searchBudget bounds the placements the search tries.
const searchBudget = 200000

// lowerBound is the largest number of floats live during one op.
func (l *lowered) lowerBound() int {
	lb := 0
	for op := -1; op <= len(l.m.Ops); op++ {
		live := 0
		for _, b := range l.bufs {
			if b.def <= op && op <= b.last {
				live += b.floats
			}
		}
		lb = max(lb, live)
	}
	return lb
}

// search places order[k:] within size floats, trying for each buffer the
// two ends of every free gap left by the placed buffers it overlaps.
func (l *lowered) search(order []int, k int, offs []int, size int, budget *int) bool {
	if k == len(order) {
		return true
	}
	b := l.bufs[order[k]]
	var busy [][2]int
	for _, j := range order[:k] {
		if overlaps(b, l.bufs[j]) {
			busy = append(busy, [2]int{offs[j], offs[j] + l.bufs[j].floats})
		}
	}
	sort.Slice(busy, func(x, y int) bool { return busy[x][0] < busy[y][0] })
	busy = append(busy, [2]int{size, size})
	at := 0
	var cands []int
	for _, r := range busy {
		if r[0]-at >= b.floats {
			cands = append(cands, at)
			if top := r[0] - b.floats; top != at {
				cands = append(cands, top)
			}
		}
		at = max(at, r[1])
	}
	for _, c := range cands {
		if *budget--; *budget < 0 {
			return false
		}
		offs[order[k]] = c
		if l.search(order, k+1, offs, size, budget) {
			return true
		}
	}
	return false
}

// placementOrders are the buffer orders the planner tries.
var placementOrders = []func(a, b *buffer) bool{
	func(a, b *buffer) bool { return a.floats > b.floats },                                   // largest first
	func(a, b *buffer) bool { return a.def < b.def },                                         // first use
	func(a, b *buffer) bool { return a.last-a.def > b.last-b.def },                           // longest lived first
	func(a, b *buffer) bool { return a.floats*(a.last-a.def+1) > b.floats*(b.last-b.def+1) }, // largest area first
}

// place assigns offsets in the given order: each buffer goes into the
// lowest gap (or, with bestFit, the smallest sufficient gap) left by the
// already placed buffers whose lifetimes overlap its own. It returns the
// offsets and the arena size in floats.
func (l *lowered) place(order []int, bestFit bool) ([]int, int) {
	offs := make([]int, len(l.bufs))
	placed := []int{}
	size := 0
	for _, i := range order {
		b := l.bufs[i]
		var busy [][2]int
		for _, j := range placed {
			if overlaps(b, l.bufs[j]) {
				busy = append(busy, [2]int{offs[j], offs[j] + l.bufs[j].floats})
			}
		}
		sort.Slice(busy, func(x, y int) bool { return busy[x][0] < busy[y][0] })
		at, gap, fit := 0, -1, -1
		for _, r := range busy {
			if r[0] > at && r[0]-at >= b.floats && (fit < 0 || r[0]-at < gap) {
				fit, gap = at, r[0]-at
				if !bestFit {
					break
				}
			}
			at = max(at, r[1])
		}
		if fit >= 0 {
			at = fit
		}
		offs[i] = at
		size = max(size, at+b.floats)
		placed = append(placed, i)
	}
	return offs, size
}

// haloKey is a buffer's place and layout in the arena: buffers with the
// same key have their halos on the same floats and their data on the same
// floats.
type haloKey struct{ off, h, w, cs, pad int }

func (b *buffer) haloKey() haloKey { return haloKey{b.off, b.h, b.w, b.cs, b.pad} }

// keepCleanHalos spares the halo clearing of a buffer whose halo is known
// to be zero when it is first written: an earlier buffer of the same key
// cleared it (or found it clear) in the same forward pass, and no buffer
// of another key written since overlaps it. Buffers of the same key write
// only their data floats, never their halo, so a chain of blocks of one
// shape (MobileNetV2's three 28x28x192 expansions, four 14x14x384 ones)
// clears the halo once per pass, in its first block (MobileNetV2: 4
// clearings instead of 13). Clearing is a store per halo float into lines
// that are often not in L1: skipping all of it (a timing-only build) made
// the 28x28 net, whose blocks all differ in shape, 0.93-0.97x on one
// thread (docs/perf.md).
//
// The scan follows op order within one pass, so it holds whatever ran
// before. The steps of a block split by channels neither clear nor write
// their outputs when the block runs split (more than one thread): a halo
// they clear is known clean only to later steps of split blocks, which
// run unsplit exactly when they do. Their writes count against other keys
// all the same. And split, a block puts its expanded maps in the floats of
// its expanded tensor (MBConv.RunChannelsIn), in a layout of its own, so
// after it the halo of that tensor's key is not known clean on more than
// one thread either.
func (l *lowered) keepCleanHalos() {
	stepAt := map[int]*step{}
	for _, st := range l.steps {
		stepAt[st.index] = st
	}
	writes := map[int][]*buffer{} // op index -> buffers written by it
	for _, tt := range l.tensors {
		if tt.view >= 0 { // a view writes nothing of its own
			continue
		}
		writes[tt.def] = append(writes[tt.def], l.bufs[tt.buf])
	}
	// clean: known zero on any thread count; cleanSplit: known zero when
	// the blocks split by channels run unsplit (one thread), the only
	// case in which their steps write.
	clean, cleanSplit := map[haloKey]bool{}, map[haloKey]bool{}
	for op := -1; op <= len(l.m.Ops); op++ {
		for _, b := range writes[op] {
			k := b.haloKey()
			if st := stepAt[op]; b.pad > 0 && b.def == op && st != nil && (st.fused == nil || st == st.fused.project) {
				split := st.split != nil
				if b.zeroHalo && (clean[k] || split && cleanSplit[k]) {
					b.zeroHalo = false
				}
				cleanSplit[k] = true
				switch {
				case !split:
					clean[k] = true
				case st == st.split.expand:
					delete(clean, k) // the split block's scratch
				}
			}
			lo, hi := b.off, b.off+b.floats
			for _, m := range []map[haloKey]bool{clean, cleanSplit} {
				for c := range m {
					if c != k && lo < c.off+c.floatsOf() && c.off < hi {
						delete(m, c)
					}
				}
			}
		}
	}
}

// floatsOf is the arena floats of a buffer of key k.
func (k haloKey) floatsOf() int {
	n := (k.h + 2*k.pad) * (k.w + 2*k.pad) * k.cs
	return (n + arenaAlign - 1) / arenaAlign * arenaAlign
}
