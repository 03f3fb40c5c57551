package gpu

import (
	"fmt"
	"math"
)

// The emulator runs a kernel's description on the CPU as the GPU would
// run its PTX: every block of the grid, each with Threads threads, its own
// shared memory and registers. The threads of a block run in lockstep,
// statement by statement, with a mask for the threads that take a branch
// or stay in a loop, so a barrier is where every thread of the block
// arrives together; a barrier reached by only some threads is an error,
// as is an out-of-range load or store and a shared-memory race (a thread
// reading or overwriting a word another thread wrote or read since the
// last barrier).

// Run runs kernel k on a grid of gx x gy blocks with the given pointer
// arguments (one slice per Ptrs entry: the global memory it points to)
// and integer arguments.
func Run(k *Kernel, gx, gy int, ptrs [][]float32, ints []int32) error {
	if err := k.Check(); err != nil {
		return err
	}
	if len(ptrs) != len(k.Ptrs) || len(ints) != len(k.Ints) {
		return fmt.Errorf("kernel %s: %d pointers and %d ints, expected %d and %d", k.Name, len(ptrs), len(ints), len(k.Ptrs), len(k.Ints))
	}
	e := &emu{k: k, ptrs: ptrs, ints: ints, n: k.Threads}
	e.regs = make([]reg, len(k.vars)*e.n)
	e.shared = make([][]float32, len(k.Shared))
	e.owner = make([][]access, len(k.Shared))
	for i, n := range k.Shared {
		e.shared[i] = make([]float32, n)
		e.owner[i] = make([]access, n)
	}
	body := e.compileStmts(k.Body)
	mask := make([]bool, e.n)
	for by := 0; by < gy; by++ {
		for bx := 0; bx < gx; bx++ {
			e.bx, e.by = int32(bx), int32(by)
			for i := range mask {
				mask[i] = true
			}
			for i := range e.shared {
				clear(e.shared[i])
				clear(e.owner[i])
			}
			e.epoch = 1
			body(mask)
			if e.err != nil {
				return fmt.Errorf("kernel %s, block (%d,%d): %w", k.Name, bx, by, e.err)
			}
		}
	}
	return nil
}

type reg struct {
	i int32
	f float32
	p bool
}

// access records the last write and read of a shared word: thread+1 (0:
// none, -1 for reads: several threads) and the barrier epoch.
type access struct {
	w, wEpoch int32
	r, rEpoch int32
}

type emu struct {
	k      *Kernel
	ptrs   [][]float32
	ints   []int32
	n      int
	bx, by int32
	regs   []reg // var id * n + thread
	shared [][]float32
	owner  [][]access
	epoch  int32
	err    error
}

func (e *emu) fail(format string, a ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, a...)
	}
}

type (
	ifn func(t int) int32
	ffn func(t int) float32
	pfn func(t int) bool
)

func (e *emu) intExpr(x Expr) ifn {
	switch x := x.(type) {
	case Int:
		v := int32(x)
		return func(int) int32 { return v }
	case Sreg:
		switch x.R {
		case TidX:
			return func(t int) int32 { return int32(t) }
		case BidX:
			return func(int) int32 { return e.bx }
		case BidY:
			return func(int) int32 { return e.by }
		default:
			return func(int) int32 { return int32(e.n) }
		}
	case Param:
		v := e.ints[x.I]
		return func(int) int32 { return v }
	case *Var:
		base := x.id * e.n
		return func(t int) int32 { return e.regs[base+t].i }
	case Bin:
		a, b := e.intExpr(x.A), e.intExpr(x.B)
		switch x.Op {
		case Add:
			return func(t int) int32 { return a(t) + b(t) }
		case Sub:
			return func(t int) int32 { return a(t) - b(t) }
		case Mul:
			return func(t int) int32 { return a(t) * b(t) }
		case Div:
			return func(t int) int32 {
				d := b(t)
				if d == 0 {
					e.fail("integer division by zero")
					return 0
				}
				return int32(uint32(a(t)) / uint32(d))
			}
		case Rem:
			return func(t int) int32 {
				d := b(t)
				if d == 0 {
					e.fail("integer division by zero")
					return 0
				}
				return int32(uint32(a(t)) % uint32(d))
			}
		case Min:
			return func(t int) int32 { return min(a(t), b(t)) }
		case Max:
			return func(t int) int32 { return max(a(t), b(t)) }
		}
	case Sel:
		c, a, b := e.predExpr(x.C), e.intExpr(x.A), e.intExpr(x.B)
		return func(t int) int32 {
			if c(t) {
				return a(t)
			}
			return b(t)
		}
	}
	panic(fmt.Sprintf("gpu: unchecked int expression %T", x))
}

func (e *emu) floatExpr(x Expr) ffn {
	switch x := x.(type) {
	case Float:
		v := float32(x)
		return func(int) float32 { return v }
	case *Var:
		base := x.id * e.n
		return func(t int) float32 { return e.regs[base+t].f }
	case Bin:
		a, b := e.floatExpr(x.A), e.floatExpr(x.B)
		switch x.Op {
		case Add:
			return func(t int) float32 { return a(t) + b(t) }
		case Sub:
			return func(t int) float32 { return a(t) - b(t) }
		case Mul:
			return func(t int) float32 { return a(t) * b(t) }
		case Min:
			return func(t int) float32 { return float32(math.Min(float64(a(t)), float64(b(t)))) }
		case Max:
			return func(t int) float32 { return float32(math.Max(float64(a(t)), float64(b(t)))) }
		}
	case FMA:
		a, b, c := e.floatExpr(x.A), e.floatExpr(x.B), e.floatExpr(x.C)
		return func(t int) float32 { return float32(math.FMA(float64(a(t)), float64(b(t)), float64(c(t)))) }
	case Exp2:
		a := e.floatExpr(x.A)
		return func(t int) float32 { return float32(math.Exp2(float64(a(t)))) }
	case Rcp:
		a := e.floatExpr(x.A)
		return func(t int) float32 { return 1 / a(t) }
	case ToF32:
		a := e.intExpr(x.A)
		return func(t int) float32 { return float32(a(t)) }
	case Sel:
		c, a, b := e.predExpr(x.C), e.floatExpr(x.A), e.floatExpr(x.B)
		return func(t int) float32 {
			if c(t) {
				return a(t)
			}
			return b(t)
		}
	case Load:
		idx := e.intExpr(x.Idx)
		p := x.P
		return func(t int) float32 {
			i := idx(t)
			mem := e.ptrs[p]
			if i < 0 || int(i) >= len(mem) {
				e.fail("thread %d loads %s[%d] of %d floats", t, e.k.Ptrs[p], i, len(mem))
				return 0
			}
			return mem[i]
		}
	case LoadShared:
		idx := e.intExpr(x.Idx)
		s := x.S
		return func(t int) float32 {
			i := idx(t)
			if i < 0 || int(i) >= len(e.shared[s]) {
				e.fail("thread %d loads shared %d[%d] of %d", t, s, i, len(e.shared[s]))
				return 0
			}
			a := &e.owner[s][i]
			if a.wEpoch == e.epoch && a.w != int32(t)+1 {
				e.fail("shared-memory race: thread %d reads word %d of array %d that thread %d wrote since the last barrier", t, i, s, a.w-1)
			}
			switch {
			case a.rEpoch != e.epoch:
				a.r, a.rEpoch = int32(t)+1, e.epoch
			case a.r != int32(t)+1:
				a.r = -1
			}
			return e.shared[s][i]
		}
	}
	panic(fmt.Sprintf("gpu: unchecked float expression %T", x))
}

func (e *emu) predExpr(x Expr) pfn {
	switch x := x.(type) {
	case *Var:
		base := x.id * e.n
		return func(t int) bool { return e.regs[base+t].p }
	case Bin:
		if x.Op == And {
			a, b := e.predExpr(x.A), e.predExpr(x.B)
			return func(t int) bool { return a(t) && b(t) }
		}
		if x.A.typ() == I32 {
			a, b := e.intExpr(x.A), e.intExpr(x.B)
			switch x.Op {
			case Lt:
				return func(t int) bool { return a(t) < b(t) }
			case Le:
				return func(t int) bool { return a(t) <= b(t) }
			case Ge:
				return func(t int) bool { return a(t) >= b(t) }
			case Eq:
				return func(t int) bool { return a(t) == b(t) }
			}
		}
		a, b := e.floatExpr(x.A), e.floatExpr(x.B)
		switch x.Op {
		case Lt:
			return func(t int) bool { return a(t) < b(t) }
		case Le:
			return func(t int) bool { return a(t) <= b(t) }
		case Ge:
			return func(t int) bool { return a(t) >= b(t) }
		case Eq:
			return func(t int) bool { return a(t) == b(t) }
		}
	case Sel:
		c, a, b := e.predExpr(x.C), e.predExpr(x.A), e.predExpr(x.B)
		return func(t int) bool {
			if c(t) {
				return a(t)
			}
			return b(t)
		}
	}
	panic(fmt.Sprintf("gpu: unchecked predicate %T", x))
}

type sfn func(mask []bool)

func (e *emu) compileStmts(ss []Stmt) sfn {
	var fns []sfn
	for _, s := range ss {
		fns = append(fns, e.compileStmt(s))
	}
	return func(mask []bool) {
		for _, f := range fns {
			if e.err != nil {
				return
			}
			f(mask)
		}
	}
}

func (e *emu) compileStmt(s Stmt) sfn {
	switch s := s.(type) {
	case Set:
		base := s.V.id * e.n
		switch s.V.T {
		case I32:
			f := e.intExpr(s.E)
			return func(mask []bool) {
				for t, on := range mask {
					if on {
						e.regs[base+t].i = f(t)
					}
				}
			}
		case F32:
			f := e.floatExpr(s.E)
			return func(mask []bool) {
				for t, on := range mask {
					if on {
						e.regs[base+t].f = f(t)
					}
				}
			}
		default:
			f := e.predExpr(s.E)
			return func(mask []bool) {
				for t, on := range mask {
					if on {
						e.regs[base+t].p = f(t)
					}
				}
			}
		}
	case Store:
		idx, val, p := e.intExpr(s.Idx), e.floatExpr(s.Val), s.P
		return func(mask []bool) {
			mem := e.ptrs[p]
			for t, on := range mask {
				if !on {
					continue
				}
				i, v := idx(t), val(t)
				if i < 0 || int(i) >= len(mem) {
					e.fail("thread %d stores %s[%d] of %d floats", t, e.k.Ptrs[p], i, len(mem))
					return
				}
				mem[i] = v
			}
		}
	case StoreShared:
		idx, val, sh := e.intExpr(s.Idx), e.floatExpr(s.Val), s.S
		return func(mask []bool) {
			for t, on := range mask {
				if !on {
					continue
				}
				i, v := idx(t), val(t)
				if i < 0 || int(i) >= len(e.shared[sh]) {
					e.fail("thread %d stores shared %d[%d] of %d", t, sh, i, len(e.shared[sh]))
					return
				}
				a := &e.owner[sh][i]
				me := int32(t) + 1
				if (a.wEpoch == e.epoch && a.w != me) || (a.rEpoch == e.epoch && a.r != me) {
					e.fail("shared-memory race: thread %d overwrites word %d of array %d that another thread used since the last barrier", t, i, sh)
					return
				}
				a.w, a.wEpoch = me, e.epoch
				e.shared[sh][i] = v
			}
		}
	case For:
		from, to := e.intExpr(s.From), e.intExpr(s.To)
		body := e.compileStmts(s.Body)
		base, step := s.V.id*e.n, s.Step
		return func(mask []bool) {
			inner := make([]bool, len(mask))
			for t, on := range mask {
				if on {
					e.regs[base+t].i = from(t)
				}
			}
			for e.err == nil {
				any := false
				for t, on := range mask {
					inner[t] = on && e.regs[base+t].i < to(t)
					any = any || inner[t]
				}
				if !any {
					return
				}
				body(inner)
				for t, on := range inner {
					if on {
						e.regs[base+t].i += step
					}
				}
			}
		}
	case If:
		cond := e.predExpr(s.Cond)
		then := e.compileStmts(s.Then)
		return func(mask []bool) {
			inner := make([]bool, len(mask))
			any := false
			for t, on := range mask {
				inner[t] = on && cond(t)
				any = any || inner[t]
			}
			if any {
				then(inner)
			}
		}
	case Barrier:
		return func(mask []bool) {
			for t, on := range mask {
				if !on {
					e.fail("barrier reached by some threads of the block only (thread %d is not there)", t)
					return
				}
			}
			e.epoch++
		}
	}
	panic(fmt.Sprintf("gpu: unchecked statement %T", s))
}
