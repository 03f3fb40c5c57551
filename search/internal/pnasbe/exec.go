package pnasbe

import (
	"cmp"
	"fmt"
	"math/bits"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Executable runs a compiled graph: its ops one at a time in creation
// order (a topological order), each op on up to Backend.Workers goroutines.
type Executable struct {
	be      *Backend
	b       *Builder
	nodes   []*Node // reachable nodes in execution order
	uses    []int   // per node id: how many reachable ops read it
	outputs []*Node
	isOut   []bool // per node id
}

var _ backends.Executable = (*Executable)(nil)

func (b *Builder) Compile(outputs []backends.Op, shardings []*backends.ShardingSpec) (backends.Executable, error) {
	if len(shardings) > 0 {
		return nil, fmt.Errorf("pnas backend: sharding not supported")
	}
	outs, err := b.in(outputs...)
	if err != nil {
		return nil, err
	}
	b.compiled = true
	fuse(b.nodes)
	e := &Executable{be: b.be, b: b, outputs: outs, isOut: make([]bool, len(b.nodes))}
	for _, n := range outs {
		e.isOut[n.id] = true
	}
	reach, uses := readers(b.nodes, outs)
	if fuseElementwise {
		fuseExprs(b.nodes, reach, uses, e.isOut)
		reach, uses = readers(b.nodes, outs)
		fuseRowReds(b.nodes, reach)
	}
	e.uses = uses
	for i, n := range b.nodes {
		if reach[i] {
			e.nodes = append(e.nodes, n)
		}
	}
	return e, nil
}

// readers returns which nodes the outputs need and how many of those read
// each node.
func readers(nodes []*Node, outs []*Node) (reach []bool, uses []int) {
	reach, uses = make([]bool, len(nodes)), make([]int, len(nodes))
	for _, n := range outs {
		reach[n.id] = true
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		if !reach[i] {
			continue
		}
		for _, in := range nodes[i].inputs {
			reach[in.id] = true
			uses[in.id]++
		}
	}
	return reach, uses
}

func (e *Executable) Finalize() {}

func (e *Executable) Inputs() ([]string, []shapes.Shape) {
	ss := make([]shapes.Shape, len(e.b.params))
	for i, p := range e.b.params {
		ss[i] = p.shape
	}
	return slices.Clone(e.b.pnames), ss
}

func (e *Executable) Outputs() []shapes.Shape {
	ss := make([]shapes.Shape, len(e.outputs))
	for i, n := range e.outputs {
		ss[i] = n.shape
	}
	return ss
}

// storage is the reference-counted memory of intermediate values; views
// (Reshape, Identity) share it. When the last reader is done it goes back
// to the execution's pool.
type storage struct {
	refs int
	key  poolKey // the buffer's dtype and size class
}

type poolKey struct {
	dt dtypes.DType
	n  int
}

// run is the state of one execution.
type run struct {
	be         *Backend
	workers    int
	pool       map[poolKey][]any
	live, peak int64 // bytes held by the execution's values and scratch
}

func bytesOf(k poolKey) int64 { return int64(k.n) * int64(k.dt.Size()) }

// alloc returns a buffer of the shape; its contents are undefined. It
// reuses a free buffer of the same dtype and size from this execution,
// else from the backend's keep (buffers earlier executions freed).
//
// Buffers come in size classes (sizeClass): paths of different kernels
// and widths give tensors of many sizes, which reuse each other's buffers
// when they fall in the same class.
func (r *run) alloc(s shapes.Shape) *Buffer {
	n := s.Size()
	k := poolKey{s.DType, sizeClass(n)}
	flat := r.take(&k)
	if flat == nil {
		flat = makeFlat(s.DType, k.n)
	}
	r.live += bytesOf(k)
	r.peak = max(r.peak, r.live)
	return &Buffer{shape: s, flat: resize(flat, n), st: &storage{refs: 1, key: k}}
}

// take returns a free buffer of class k, or of a larger class up to twice
// its size (above 4,096 elements), from this execution's pool first, else
// from the backend's keep; k becomes the class taken. It returns nil if
// there is none.
func (r *run) take(k *poolKey) any {
	limit := k.n
	if k.n > 4096 {
		limit = 2 * k.n
	}
	for c := k.n; c <= limit; c = sizeClass(c + 1) {
		key := poolKey{k.dt, c}
		if l := r.pool[key]; len(l) > 0 {
			r.pool[key] = l[:len(l)-1]
			k.n = c
			return l[len(l)-1]
		}
	}
	for c := k.n; c <= limit; c = sizeClass(c + 1) {
		if f := r.be.keep.take(poolKey{k.dt, c}); f != nil {
			k.n = c
			return f
		}
	}
	return nil
}

// sizeClass rounds n up to a multiple of an eighth of the power of two
// below it (at most 12.5% more) from 4,096 elements on.
func sizeClass(n int) int {
	if n <= 4096 {
		return n
	}
	step := 1 << (bits.Len(uint(n)) - 4)
	return (n + step - 1) / step * step
}

// resize returns flat with length n (within its capacity).
func resize(flat any, n int) any {
	switch f := flat.(type) {
	case []float32:
		return f[:n]
	case []float64:
		return f[:n]
	case []int32:
		return f[:n]
	case []int64:
		return f[:n]
	case []bool:
		return f[:n]
	}
	return reflect.ValueOf(flat).Slice(0, n).Interface()
}

// release drops one reference to b's storage.
func (r *run) release(b *Buffer) {
	if b == nil || b.st == nil {
		return
	}
	b.st.refs--
	if b.st.refs == 0 {
		k := b.st.key
		r.pool[k] = append(r.pool[k], b.flat)
		r.live -= bytesOf(k)
	}
}

// keep holds the buffers executions freed, for the next executions, up to
// the working set of the largest recent execution: the backend owns its
// memory, so the Go collector sees a steady heap instead of a graph's
// worth of garbage per step, and pages are not faulted in afresh.
type keep struct {
	mu    sync.Mutex
	free  map[poolKey][]any
	bytes int64
	limit int64
}

func (k *keep) take(key poolKey) any {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.free[key]
	if len(l) == 0 {
		return nil
	}
	f := l[len(l)-1]
	l[len(l)-1] = nil
	k.free[key] = l[:len(l)-1]
	k.bytes -= bytesOf(key)
	return f
}

// clear drops every kept buffer.
func (k *keep) clear() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.free, k.bytes, k.limit = nil, 0, 0
}

// give takes back the free buffers of a finished execution whose working
// set peaked at peak bytes, and trims the keep to its limit: first the
// buffers of sizes this execution did not free (kept from earlier ones),
// then the smallest sizes (each in a fixed order).
func (k *keep) give(pool map[poolKey][]any, peak int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// The limit follows the executions: the largest of the last working
	// set and half the previous limit.
	k.limit = max(peak, k.limit/2)
	stale := k.free
	k.free = map[poolKey][]any{}
	for key, l := range pool {
		k.free[key] = append(k.free[key], l...)
		k.bytes += int64(len(l)) * bytesOf(key)
	}
	for _, key := range sortedKeys(stale) {
		l := stale[key]
		if _, fresh := pool[key]; !fresh {
			for len(l) > 0 && k.bytes > k.limit {
				l[len(l)-1] = nil
				l = l[:len(l)-1]
				k.bytes -= bytesOf(key)
			}
		}
		if len(l) > 0 {
			k.free[key] = append(k.free[key], l...)
		}
	}
	if k.bytes <= k.limit {
		return
	}
	for _, key := range sortedKeys(k.free) {
		for len(k.free[key]) > 0 && k.bytes > k.limit {
			l := k.free[key]
			l[len(l)-1] = nil
			k.free[key] = l[:len(l)-1]
			k.bytes -= bytesOf(key)
		}
		if len(k.free[key]) == 0 {
			delete(k.free, key)
		}
	}
}

// sortedKeys returns m's keys, smallest size first.
func sortedKeys(m map[poolKey][]any) []poolKey {
	keys := make([]poolKey, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b poolKey) int {
		if c := cmp.Compare(bytesOf(a), bytesOf(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.dt, b.dt)
	})
	return keys
}

// temp returns a scratch buffer; free it with release.
func (r *run) temp(dt dtypes.DType, dims ...int) *Buffer { return r.alloc(shapes.Make(dt, dims...)) }

func (e *Executable) Execute(inputs []backends.Buffer, _ []bool, _ backends.DeviceNum) (outs []backends.Buffer, err error) {
	params := e.b.params
	if len(inputs) != len(params) {
		return nil, fmt.Errorf("pnas backend: graph %q takes %d inputs, got %d", e.b.name, len(params), len(inputs))
	}
	vals := make([]*Buffer, len(e.b.nodes))
	for i, p := range params {
		in, err := e.be.buf(inputs[i])
		if err != nil {
			return nil, err
		}
		if !in.shape.Equal(p.shape) {
			return nil, fmt.Errorf("pnas backend: graph %q input %d (%s): got shape %s, want %s", e.b.name, i, e.b.pnames[i], in.shape, p.shape)
		}
		if in.flat == nil {
			return nil, fmt.Errorf("pnas backend: graph %q input %d: buffer already finalized", e.b.name, i)
		}
		vals[p.id] = &Buffer{shape: in.shape, flat: in.flat}
	}
	r := &run{be: e.be, workers: e.be.workers, pool: map[poolKey][]any{}}
	defer func() { e.be.keep.give(r.pool, r.peak) }()
	uses := slices.Clone(e.uses)
	prof := profiling()
	for _, n := range e.nodes {
		if n.op == backends.OpTypeParameter {
			continue
		}
		ins := make([]*Buffer, len(n.inputs))
		for i, in := range n.inputs {
			ins[i] = vals[in.id]
		}
		var t0 time.Time
		var err error
		if prof {
			t0 = time.Now()
		}
		var out *Buffer
		switch {
		case n.fused == fusedRowRed:
			out = vals[n.id] // computed with its operand
		case n.fused == fusedExpr:
			var reds []rowRedRun
			for _, red := range n.rowReds {
				dst := r.alloc(red.node.shape)
				vals[red.node.id] = dst
				rr := rowRedRun{sum: red.node.op == backends.OpTypeReduceSum, dst: dst.flat.([]float32)}
				if red.other != nil {
					rr.other = vals[red.other.id].flat.([]float32)
				}
				reds = append(reds, rr)
			}
			out, err = r.expr(n, ins, e.reusable(n, ins, uses), reds)
		default:
			out, err = r.exec(n, ins)
		}
		if prof {
			record(n, time.Since(t0))
		}
		if err != nil {
			return nil, fmt.Errorf("pnas backend: graph %q: %s -> %s: %w", e.b.name, n.op, n.shape, err)
		}
		vals[n.id] = out
		for _, in := range n.inputs {
			uses[in.id]--
			if uses[in.id] == 0 && !e.isOut[in.id] {
				r.release(vals[in.id])
				vals[in.id] = nil
			}
		}
	}
	outs = make([]backends.Buffer, len(e.outputs))
	seen := map[int]bool{}
	for i, n := range e.outputs {
		v := vals[n.id]
		if v.st == nil || seen[n.id] {
			// Inputs and constants belong to their owners; a repeated
			// output gets its own copy.
			c := makeFlat(v.shape.DType, v.shape.Size())
			copyAny(c, v.flat)
			v = &Buffer{shape: v.shape, flat: c}
		}
		seen[n.id] = true
		outs[i] = &Buffer{shape: v.shape, flat: v.flat}
	}
	return outs, nil
}

// reusable returns the buffer of an input of the fused expression n that
// n may overwrite: read in full, by n alone, held by no other value, of
// the output's shape; nil if none. Writing the output over an input that
// is being read saves a fresh buffer and the memory traffic of filling it.
func (e *Executable) reusable(n *Node, ins []*Buffer, uses []int) *Buffer {
	for i, in := range n.inputs {
		b := ins[i]
		if n.expr.leaves[i].kind == leafFull && uses[in.id] == 1 && !e.isOut[in.id] && b.st != nil && b.st.refs == 1 &&
			b.shape.DType == n.shape.DType && b.shape.Size() == n.shape.Size() {
			return b
		}
	}
	return nil
}

// exec runs one op.
func (r *run) exec(n *Node, ins []*Buffer) (*Buffer, error) {
	switch n.op {
	case backends.OpTypeConstant:
		c := n.attr.(*Buffer)
		return &Buffer{shape: c.shape, flat: c.flat}, nil
	case backends.OpTypeIdentity, backends.OpTypeReshape:
		x := ins[0]
		if x.st != nil {
			x.st.refs++
		}
		return &Buffer{shape: n.shape, flat: x.flat, st: x.st}, nil
	}
	out := r.alloc(n.shape)
	var err error
	switch {
	case n.fused == fusedBandMask:
		err = bandMask(ins, out, r.workers)
	case unaryOps[n.op]:
		err = r.unary(n.op, ins[0], out)
	case binaryOps[n.op] || compareOps[n.op]:
		err = r.binary(n.op, ins[0], ins[1], out)
	default:
		switch n.op {
		case backends.OpTypeTranspose:
			r.transpose(ins[0], n.attr.([]int), out)
		case backends.OpTypeBroadcastInDim:
			r.broadcastInDim(ins[0], n.attr.([]int), out)
		case backends.OpTypeSlice:
			a := n.attr.(*sliceAttr)
			r.slice(ins[0], a, out)
		case backends.OpTypeConcatenate:
			r.concatenate(n.attr.(int), ins, out)
		case backends.OpTypeIota:
			err = iotaFill(out, n.attr.(int))
		case backends.OpTypeConvertDType:
			err = convert(ins[0], out)
		case backends.OpTypeWhere:
			err = r.where(ins[0], ins[1], ins[2], out)
		case backends.OpTypeClamp:
			err = r.clamp(ins[0], ins[1], ins[2], out)
		case backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin, backends.OpTypeReduceProduct:
			err = r.reduce(n.op, ins[0], n.attr.([]int), out)
		case backends.OpTypeDotGeneral:
			err = r.dot(ins[0], ins[1], n.attr.(*dotAttr), out)
		case backends.OpTypePad:
			err = r.pad(ins[0], ins[1], n.attr.(*padAttr), out)
		case backends.OpTypeReverse:
			err = r.reverse(ins[0], n.attr.([]int), out)
		case backends.OpTypeConvGeneral:
			err = r.conv(ins[0], ins[1], n.attr.(*convAttr), out)
		default:
			err = fmt.Errorf("op not implemented")
		}
	}
	if err != nil {
		r.release(out)
		return nil, err
	}
	return out, nil
}
