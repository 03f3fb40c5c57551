package codegen_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
)

// randomMBConv draws a network from the MBConv search space: a stem, one to
// three stages of one to three MBConv layers (kernel 3/5/7, expansion
// 1/3/6, the first layer of a stage strided 1 or 2, later layers skipped
// at random), a 1x1 head, global pooling and a classifier. Channel counts
// are deliberately not multiples of 8 now and then.
func randomMBConv(seed uint64) (*ir.Model, error) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	cin := []int{1, 3}[rng.IntN(2)]
	size := []int{7, 8, 9, 12, 15, 16}[rng.IntN(6)]
	b := ir.NewBuilder(fmt.Sprintf("rand%03d", seed), cin, size, size, rng)
	widths := []int{4, 6, 8, 10, 12, 16, 20, 24}
	b.Block = &ir.Block{Stage: 0, Layer: 0, Candidate: "stem"}
	x := b.ConvBNAct("stem", b.Input(), widths[2+rng.IntN(4)], 3, 1+rng.IntN(2), 1, ir.ActReLU6)
	stages := 1 + rng.IntN(3)
	for s := 1; s <= stages; s++ {
		out := widths[rng.IntN(len(widths))]
		n := 1 + rng.IntN(3)
		for li := 0; li < n; li++ {
			stride := 1
			if li == 0 {
				stride = 1 + rng.IntN(2)
			} else if rng.IntN(4) == 0 {
				continue // the zero op: the layer is skipped
			}
			k := []int{3, 5, 7}[rng.IntN(3)]
			e := []int{1, 3, 6}[rng.IntN(3)]
			b.Block = &ir.Block{Stage: s, Layer: li, Candidate: fmt.Sprintf("mbconv k%d e%d", k, e)}
			x = testnet.MBConv(b, fmt.Sprintf("s%d.l%d", s, li), x, out, k, e, stride)
		}
	}
	b.Block = &ir.Block{Stage: -1, Layer: 0, Candidate: "head"}
	x = b.ConvBNAct("head", x, []int{24, 32, 36}[rng.IntN(3)], 1, 1, 1, ir.ActReLU6)
	b.Block = &ir.Block{Stage: -1, Layer: 1, Candidate: "classifier"}
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flatten", x)
	x = b.Dense("fc", x, 10, nil, nil)
	m, err := b.Model(x)
	if err != nil {
		return nil, err
	}
	m.Input.Labels = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
	return m, nil
}

// edgeCases are models that exercise the corners of lowering and
// planning.
func edgeCases() ([]*ir.Model, error) {
	var out []*ir.Model
	add := func(name string, c, h, w int, f func(b *ir.Builder) string) {
		b := ir.NewBuilder(name, c, h, w, rand.New(rand.NewPCG(uint64(len(out))+7, 3)))
		x := f(b)
		m, err := b.Model(x)
		if err != nil {
			panic(fmt.Sprintf("%s: %v", name, err))
		}
		out = append(out, m)
	}
	// channels not a multiple of 8 or 16, stride 2 on odd sizes
	add("odd-channels", 3, 13, 11, func(b *ir.Builder) string {
		x := b.ConvBNAct("stem", b.Input(), 5, 3, 2, 1, ir.ActReLU)
		x = testnet.MBConv(b, "b1", x, 7, 3, 3, 2)
		x = testnet.MBConv(b, "b2", x, 7, 5, 6, 1)
		x = testnet.MBConv(b, "b3", x, 9, 3, 1, 2)
		x = b.GlobalPool("pool", x)
		x = b.Flatten("flat", x)
		return b.Dense("fc", x, 3, nil, nil)
	})
	// 1x1 spatial maps with k3 and k5 depthwise convolutions
	add("one-by-one", 2, 4, 4, func(b *ir.Builder) string {
		x := b.ConvBNAct("stem", b.Input(), 8, 3, 2, 1, ir.ActReLU6)
		x = testnet.MBConv(b, "b1", x, 12, 3, 3, 2)
		x = testnet.MBConv(b, "b2", x, 12, 5, 6, 1)
		x = testnet.MBConv(b, "b3", x, 12, 3, 1, 1)
		x = b.Flatten("flat", x)
		return b.Dense("fc", x, 4, nil, nil)
	})
	// k7 on 4x4 maps
	add("k7-on-4x4", 1, 8, 8, func(b *ir.Builder) string {
		x := b.ConvBNAct("stem", b.Input(), 16, 3, 2, 1, ir.ActReLU6)
		x = testnet.MBConv(b, "b1", x, 16, 7, 3, 1)
		x = testnet.MBConv(b, "b2", x, 16, 7, 1, 1)
		x = b.GlobalPool("pool", x)
		x = b.Flatten("flat", x)
		return b.Dense("fc", x, 5, nil, nil)
	})
	// grouped (not depthwise) convolution, asymmetric padding, bias
	add("grouped", 4, 9, 9, func(b *ir.Builder) string {
		x := b.ConvFull("g1", b.Input(), 12, [2]int{3, 3}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, 2, true, nil, nil)
		x = b.Act("g1.act", x, ir.ActReLU)
		x = b.ConvFull("g2", x, 12, [2]int{3, 2}, [2]int{2, 1}, [4]int{0, 1, 1, 0}, 4, false, nil, nil)
		x = b.BatchNorm("g2.bn", x, nil, nil, nil, nil)
		x = b.GlobalPool("pool", x)
		x = b.Flatten("flat", x)
		return b.Dense("fc", x, 6, nil, nil)
	})
	// dense without pooling: flatten of a 5x5 map into the classifier
	add("dense-no-pool", 1, 10, 10, func(b *ir.Builder) string {
		x := b.ConvBNAct("stem", b.Input(), 6, 3, 2, 1, ir.ActReLU6)
		x = testnet.MBConv(b, "b1", x, 6, 5, 3, 1)
		x = b.Flatten("flat", x)
		x = b.Dense("fc1", x, 20, nil, nil)
		x = b.Act("fc1.act", x, ir.ActReLU)
		return b.Dense("fc2", x, 7, nil, nil)
	})
	// standalone ops the passes cannot fuse: an add of two branches, a
	// batchnorm and an activation on a vector, a flatten read by a softmax
	add("standalone-ops", 3, 6, 6, func(b *ir.Builder) string {
		x := b.Conv("c1", b.Input(), 10, 3, 1, 1)
		y := b.Conv("c2", b.Input(), 10, 1, 1, 1)
		s := b.Add("sum", x, y)
		s = b.Act("sum.act", s, ir.ActReLU6)
		z := b.Add("sum2", s, x)
		p := b.GlobalPool("pool", z)
		v := b.Flatten("flat", p)
		v = b.BatchNorm("vbn", v, nil, nil, nil, nil)
		v = b.Act("vact", v, ir.ActReLU)
		v = b.Dense("fc", v, 9, nil, nil)
		return b.Softmax("prob", v)
	})
	// a model whose output is a flatten of a map (materialised planar copy)
	add("flatten-output", 2, 3, 3, func(b *ir.Builder) string {
		x := b.ConvFull("c", b.Input(), 3, [2]int{3, 3}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, 1, true, nil, nil)
		return b.Flatten("flat", x)
	})
	// chains of blocks of one shape, whose expansions clear a shared halo
	// once (keepCleanHalos), broken by a block whose expansion (another
	// halo) writes over it: on a 14x14 map (not split) and a 7x7 one
	// (split by channels on two threads)
	for _, size := range []int{14, 7} {
		add(fmt.Sprintf("same-shape-chain-%d", size), 3, size, size, func(b *ir.Builder) string {
			x := b.ConvBNAct("stem", b.Input(), 16, 3, 1, 1, ir.ActReLU6)
			x = testnet.MBConv(b, "b1", x, 16, 3, 6, 1)
			x = testnet.MBConv(b, "b2", x, 16, 3, 6, 1)
			x = testnet.MBConv(b, "b3", x, 16, 5, 6, 1)
			x = testnet.MBConv(b, "b4", x, 16, 3, 6, 1)
			x = testnet.MBConv(b, "b5", x, 16, 3, 6, 1)
			x = b.GlobalPool("pool", x)
			x = b.Flatten("flat", x)
			return b.Dense("fc", x, 5, nil, nil)
		})
	}
	return out, nil
}
