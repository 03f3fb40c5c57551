package gpu_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pnasml/pnas/codegen/gpu"
	"github.com/pnasml/pnas/ir"
)

// opModel builds a small model around one op kind.
func opModel(t *testing.T, name string, c, h, w int, f func(b *ir.Builder, x string) string) *ir.Model {
	t.Helper()
	b := ir.NewBuilder(name, c, h, w, rand.New(rand.NewPCG(uint64(len(name)), 11)))
	y := f(b, b.Input())
	if len(b.Raw().Ops) > 0 && b.Raw().Ops[len(b.Raw().Ops)-1].Type != ir.OpSoftmax && b.Raw().Ops[len(b.Raw().Ops)-1].Type != ir.OpDense {
		y = b.Flatten("out", y) // a model's output is a vector
	}
	m, err := b.Model(y)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// TestKernels checks every kernel kind, with its epilogues, against the
// interpreter in the emulator, at batch 1 and 3.
func TestKernels(t *testing.T) {
	for _, m := range kernelModels(t) {
		for _, n := range []int{1, 3} {
			checkModel(t, m, n)
		}
	}
}

// kernelModels are small models around every kernel kind.
func kernelModels(t *testing.T) []*ir.Model {
	var models []*ir.Model
	for _, k := range []int{3, 5, 7} {
		for _, s := range []int{1, 2} {
			models = append(models, opModel(t, fmt.Sprintf("dw-k%d-s%d", k, s), 6, 9, 8, func(b *ir.Builder, x string) string {
				y := b.ConvFull("dw", x, 6, [2]int{k, k}, [2]int{s, s}, [4]int{k / 2, k / 2, k / 2, k / 2}, 6, true, nil, nil)
				return b.Act("relu6", y, ir.ActReLU6)
			}))
		}
	}
	models = append(models,
		// 1x1 GEMMs: sizes off the 16-wide tile, bias, ReLU, and a residual
		opModel(t, "pointwise", 19, 5, 7, func(b *ir.Builder, x string) string {
			y := b.ConvFull("pw", x, 21, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, true, nil, nil)
			return b.Act("relu", y, ir.ActReLU)
		}),
		// register-tiled 64x64 GEMMs: channels and columns off the tiles,
		// several tiles in both directions, a residual
		opModel(t, "pointwise64", 37, 5, 7, func(b *ir.Builder, x string) string {
			y := b.ConvFull("pw", x, 70, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, true, nil, nil)
			return b.Act("relu6", y, ir.ActReLU6)
		}),
		opModel(t, "pointwise64-residual", 64, 9, 9, func(b *ir.Builder, x string) string {
			y := b.Conv("pw", x, 64, 1, 1, 1)
			return b.Add("res", y, x)
		}),
		opModel(t, "pointwise-residual", 40, 3, 3, func(b *ir.Builder, x string) string {
			y := b.Conv("pw", x, 40, 1, 1, 1)
			return b.Add("res", y, x)
		}),
		// the stem: dense 3x3 stride 2 from 3 channels, batchnorm, ReLU6
		opModel(t, "stem", 3, 11, 12, func(b *ir.Builder, x string) string {
			return b.ConvBNAct("stem", x, 8, 3, 2, 1, ir.ActReLU6)
		}),
		opModel(t, "grouped", 4, 7, 7, func(b *ir.Builder, x string) string {
			return b.ConvFull("g", x, 8, [2]int{3, 2}, [2]int{2, 1}, [4]int{0, 1, 1, 0}, 2, false, nil, nil)
		}),
		// pooling and the classifier, softmax; a batchnorm, activation and
		// add the passes leave standalone
		opModel(t, "classifier", 12, 5, 5, func(b *ir.Builder, x string) string {
			p := b.GlobalPool("pool", x)
			v := b.Flatten("flat", p)
			v = b.BatchNorm("bn", v, nil, nil, nil, nil)
			v = b.Act("act", v, ir.ActReLU)
			v = b.Dense("fc", v, 10, nil, nil)
			return b.Softmax("prob", v)
		}),
		opModel(t, "standalone", 3, 6, 6, func(b *ir.Builder, x string) string {
			p := b.Conv("c1", x, 10, 3, 1, 1)
			q := b.Conv("c2", x, 10, 1, 1, 1)
			s := b.Add("sum", p, q)
			s = b.Act("sum.act", s, ir.ActReLU6)
			s = b.BatchNorm("bn", s, nil, nil, nil, nil)
			v := b.Flatten("flat", s)
			return b.Dense("fc", v, 7, nil, nil)
		}),
	)
	return models
}

// TestEmulatorFindsRaces checks that the emulator reports the errors a GPU
// would not: a missing barrier, a divergent barrier, an out-of-range load.
func TestEmulatorFindsRaces(t *testing.T) {
	mk := func(barrier bool) *gpu.Kernel {
		k := &gpu.Kernel{Name: "shift", Threads: 32, Ptrs: []string{"out"}, Shared: []int{32}}
		body := []gpu.Stmt{gpu.StoreShared{S: 0, Idx: gpu.Sreg{R: gpu.TidX}, Val: gpu.Float(1)}}
		if barrier {
			body = append(body, gpu.Barrier{})
		}
		next := gpu.Bin{Op: gpu.Rem, A: gpu.Bin{Op: gpu.Add, A: gpu.Sreg{R: gpu.TidX}, B: gpu.Int(1)}, B: gpu.Int(32)}
		k.Body = append(body, gpu.Store{P: 0, Idx: gpu.Sreg{R: gpu.TidX}, Val: gpu.LoadShared{S: 0, Idx: next}})
		return k
	}
	out := make([]float32, 32)
	if err := gpu.Run(mk(true), 1, 1, [][]float32{out}, nil); err != nil {
		t.Fatalf("with the barrier: %v", err)
	}
	if err := gpu.Run(mk(false), 1, 1, [][]float32{out}, nil); err == nil || !strings.Contains(err.Error(), "race") {
		t.Errorf("without the barrier: got %v, expected a shared-memory race", err)
	}
	div := &gpu.Kernel{Name: "divergent", Threads: 32, Ptrs: []string{"out"},
		Body: []gpu.Stmt{gpu.If{Cond: gpu.Bin{Op: gpu.Lt, A: gpu.Sreg{R: gpu.TidX}, B: gpu.Int(16)}, Then: []gpu.Stmt{gpu.Barrier{}}}}}
	if err := gpu.Run(div, 1, 1, [][]float32{out}, nil); err == nil || !strings.Contains(err.Error(), "barrier") {
		t.Errorf("divergent barrier: got %v", err)
	}
	oob := &gpu.Kernel{Name: "oob", Threads: 64, Ptrs: []string{"out"},
		Body: []gpu.Stmt{gpu.Store{P: 0, Idx: gpu.Sreg{R: gpu.TidX}, Val: gpu.Float(0)}}}
	if err := gpu.Run(oob, 1, 1, [][]float32{out}, nil); err == nil || !strings.Contains(err.Error(), "stores out[32] of 32") {
		t.Errorf("out of range: got %v", err)
	}
}
