package codegen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/pass"
	"github.com/pnasml/pnas/runtime"
)

// blockModel is one residual inverted-residual block (16 -> 16, expansion
// 6, k3) on a size x size map, then pooling and a classifier.
func blockModel(t *testing.T, size int) *ir.Model {
	t.Helper()
	b := ir.NewBuilder("block", 16, size, size, rand.New(rand.NewPCG(1, 1)))
	x := testnet.MBConv(b, "b", b.Input(), 16, 3, 6, 1)
	x = testnet.MBConv(b, "c", x, 24, 5, 6, 2)
	return classifier(t, b, x)
}

// classifier ends b's network at x with pooling and a 10-class classifier
// and returns the model after the IR passes.
func classifier(t *testing.T, b *ir.Builder, x string) *ir.Model {
	t.Helper()
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	m, err := b.Model(b.Dense("fc", x, 10, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	om, err := pass.Apply(m, pass.Options{Check: true})
	if err != nil {
		t.Fatal(err)
	}
	return om
}

// TestFuseRule checks the lowering rule: FuseOn fuses every block, FuseOff
// none, FuseAuto those whose expanded tensor exceeds FuseMBConvBytes; and
// a fused block's output never shares the block input's buffer or arena
// floats.
func TestFuseRule(t *testing.T) {
	// Both blocks expand to 96 channels at the input size: 80x80x96 floats
	// are 2.5 MB (> 1.5 MiB), 56x56x96 1.2 MB.
	for _, c := range []struct {
		size int
		mode FuseMode
		want int
	}{{80, FuseAuto, 2}, {56, FuseAuto, 0}, {28, FuseOn, 2}, {80, FuseOff, 0}} {
		l, err := lower(blockModel(t, c.size), c.mode, splitSmall)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.fusions) != c.want {
			t.Errorf("%dx%d, mode %d: %d blocks fused, want %d", c.size, c.size, c.mode, len(l.fusions), c.want)
		}
		if _, err := l.plan(); err != nil {
			t.Fatal(err)
		}
		for _, f := range l.fusions {
			ib := l.bufOf(l.resolve(f.expand.in))
			ob := l.bufOf(l.resolve(f.project.out))
			if ib == ob || (ib.off < ob.off+ob.floats && ob.off < ib.off+ib.floats) {
				t.Errorf("%dx%d: block %q writes over its input", c.size, c.size, f.expand.op.Name)
			}
		}
	}
}

// TestFuseRuleNoExpansion checks the rule for blocks without expansion
// (depthwise → project): FuseAuto fuses them when the depthwise output
// exceeds FuseMBConvBytes (112x112x32 floats are 1.6 MB, 80x80x32 0.8 MB),
// the fused block starts at the depthwise step and never writes over its
// input.
func TestFuseRuleNoExpansion(t *testing.T) {
	model := func(size int) *ir.Model {
		b := ir.NewBuilder("noexp", 32, size, size, rand.New(rand.NewPCG(2, 2)))
		return classifier(t, b, testnet.MBConv(b, "a", b.Input(), 16, 3, 1, 1))
	}
	for _, c := range []struct {
		size int
		mode FuseMode
		want int
	}{{112, FuseAuto, 1}, {80, FuseAuto, 0}, {20, FuseOn, 1}, {112, FuseOff, 0}} {
		l, err := lower(model(c.size), c.mode, splitSmall)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.fusions) != c.want {
			t.Fatalf("%dx%d, mode %d: %d blocks fused, want %d", c.size, c.size, c.mode, len(l.fusions), c.want)
		}
		if _, err := l.plan(); err != nil {
			t.Fatal(err)
		}
		for _, f := range l.fusions {
			if f.expand != nil || f.head() != f.dw || f.project.index != f.dw.index+1 {
				t.Errorf("%dx%d: fused block %+v, want the depthwise step and its projection", c.size, c.size, f)
			}
			ib := l.bufOf(l.resolve(f.head().in))
			ob := l.bufOf(l.resolve(f.project.out))
			if ib == ob || (ib.off < ob.off+ob.floats && ob.off < ib.off+ib.floats) {
				t.Errorf("%dx%d: block %q writes over its input", c.size, c.size, f.dw.op.Name)
			}
			if ib.pad < 1 {
				t.Errorf("%dx%d: the block's input has halo %d, the depthwise convolution needs 1", c.size, c.size, ib.pad)
			}
		}
	}
}

// TestSplitRule checks which blocks run split by channels on more than one
// thread: under FuseAuto, the unfused blocks with an expansion and at most
// SplitMBConvRows output rows (splitSmallS2: also those of stride 2 with
// at most twice that); none under FuseOff or FuseOn (which fuses them
// all), nor with splitNone (targets other than amd64). A split block keeps
// its three operators for one thread.
func TestSplitRule(t *testing.T) {
	// blockModel's first block keeps the map size, the second halves it.
	for _, c := range []struct {
		size  int
		mode  FuseMode
		split splitRule
		want  []string
	}{
		{14, FuseAuto, splitSmall, []string{"c"}}, {7, FuseAuto, splitSmall, []string{"b", "c"}}, {16, FuseAuto, splitSmall, nil},
		{7, FuseOff, splitSmall, nil}, {7, FuseOn, splitSmall, nil}, {7, FuseAuto, splitNone, nil},
		// stride 2 to 14 rows (c of a 28x28 map) only with splitSmallS2
		{28, FuseAuto, splitSmall, nil}, {28, FuseAuto, splitSmallS2, []string{"c"}}, {14, FuseAuto, splitSmallS2, []string{"c"}},
		{16, FuseAuto, splitSmallS2, []string{"c"}},
	} {
		l, err := lower(blockModel(t, c.size), c.mode, c.split)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range l.splits {
			got = append(got, strings.SplitN(b.expand.op.Name, ".", 2)[0])
			if b.expand.fused != nil || b.dw.split != b || b.project.split != b || b.project.index != b.expand.index+2 {
				t.Errorf("%dx%d: split block %+v is not its three unfused steps", c.size, c.size, b)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%dx%d, mode %d: blocks %v split, want %v", c.size, c.size, c.mode, got, c.want)
		}
		if _, err := l.plan(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCleanHalos checks keepCleanHalos on a chain of blocks of one shape
// broken by a block of another kernel size: the first expansion of the
// chain clears its halo, the next one of the same place and layout does
// not, and after the other block's expansion wrote over those floats the
// chain clears it again. The same holds when the blocks run split by
// channels on two threads (7x7). TestCompiledMatchesInterpreter and
// TestSplitMatchesInterpreter run these models ("same-shape-chain-*").
func TestCleanHalos(t *testing.T) {
	for _, c := range []struct {
		size  int
		split splitRule
	}{{14, splitNone}, {14, splitSmall}, {7, splitNone}, {7, splitSmall}} {
		b := ir.NewBuilder("chain", 3, c.size, c.size, rand.New(rand.NewPCG(1, 1)))
		x := b.ConvBNAct("stem", b.Input(), 16, 3, 1, 1, ir.ActReLU6)
		for i, k := range []int{3, 3, 5, 3, 3} {
			x = testnet.MBConv(b, fmt.Sprintf("b%d", i+1), x, 16, k, 6, 1)
		}
		l, err := lower(classifier(t, b, x), FuseAuto, c.split)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.plan(); err != nil {
			t.Fatal(err)
		}
		if want := c.split == splitSmall && c.size == 7; (len(l.splits) == 5) != want {
			t.Fatalf("%dx%d, split rule %d: %d blocks split", c.size, c.size, c.split, len(l.splits))
		}
		// the expansions' outputs, in block order
		var ex []*buffer
		for _, st := range l.steps {
			if st.kind == stepConv && st.conv.kind == runtime.KindPointwise && l.bufOf(st.out).pad > 0 {
				ex = append(ex, l.bufOf(st.out))
			}
		}
		if len(ex) != 5 {
			t.Fatalf("%d expansions with a halo, want 5", len(ex))
		}
		name := fmt.Sprintf("%dx%d, split rule %d", c.size, c.size, c.split)
		k := ex[0].haloKey()
		for _, i := range []int{1, 3, 4} {
			if ex[i].haloKey() != k {
				t.Fatalf("%s: block %d's expansion at %+v, block 1's at %+v", name, i+1, ex[i].haloKey(), k)
			}
		}
		if !ex[0].dirty || !ex[0].zeroHalo {
			t.Errorf("%s: the chain's first expansion does not clear its halo (dirty %v)", name, ex[0].dirty)
		}
		if ex[1].zeroHalo || ex[4].zeroHalo {
			t.Errorf("%s: blocks 2 and 5 clear a halo that the block before cleared (%v, %v)", name, ex[1].zeroHalo, ex[4].zeroHalo)
		}
		b3 := ex[2]
		if b3.off < k.off+k.floatsOf() && k.off < b3.off+b3.floats && !ex[3].zeroHalo {
			t.Errorf("%s: block 4 does not clear the halo that block 3's expansion wrote over", name)
		}
	}
}

// TestCleanHalosAfterScratch: on more than one thread a block split by
// channels keeps its expanded maps in the floats of its expanded tensor,
// in a layout of its own (MBConv.RunChannelsIn), so an unsplit block after
// it whose expansion lands on the same floats must clear its halo, even
// when an unsplit block before the split one cleared it. Three 7x7 blocks
// of one shape, the middle one split.
func TestCleanHalosAfterScratch(t *testing.T) {
	b := ir.NewBuilder("chain", 3, 7, 7, rand.New(rand.NewPCG(1, 1)))
	x := b.ConvBNAct("stem", b.Input(), 16, 3, 1, 1, ir.ActReLU6)
	for i := range 3 {
		x = testnet.MBConv(b, fmt.Sprintf("b%d", i+1), x, 16, 3, 6, 1)
	}
	l, err := lower(classifier(t, b, x), FuseAuto, splitSmall)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.splits) != 3 {
		t.Fatalf("%d blocks split, want 3", len(l.splits))
	}
	first, mid, last := l.splits[0], l.splits[1], l.splits[2]
	for _, blk := range []*fusedBlock{first, last} {
		for _, st := range []*step{blk.expand, blk.dw, blk.project} {
			st.split = nil
		}
	}
	l.splits = []*fusedBlock{mid}
	if _, err := l.plan(); err != nil {
		t.Fatal(err)
	}
	e1, e2, e3 := l.bufOf(first.expand.out), l.bufOf(mid.expand.out), l.bufOf(last.expand.out)
	if e1.haloKey() != e2.haloKey() || e2.haloKey() != e3.haloKey() {
		t.Fatalf("the expansions at %+v, %+v and %+v, want one place", e1.haloKey(), e2.haloKey(), e3.haloKey())
	}
	if !e1.zeroHalo {
		t.Error("the first block does not clear its halo")
	}
	if !e3.zeroHalo {
		t.Error("the block after the split one does not clear the halo of the floats the split block used as scratch")
	}
}

// TestFusedIntermediatesTakeNoArena checks that the tensors a fused block
// computes in its strips (the expansion's and the depthwise output) get
// no arena floats: every other buffer lies within the arena, which still
// meets its lower bound and is smaller than the unfused model's by at
// least the largest intermediate.
func TestFusedIntermediatesTakeNoArena(t *testing.T) {
	m := blockModel(t, 28)
	l, err := lower(m, FuseOn, splitSmall)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.plan()
	if err != nil {
		t.Fatal(err)
	}
	inner := 0
	for _, f := range l.fusions {
		for _, st := range []*step{f.expand, f.dw} {
			b := l.bufOf(l.resolve(st.out))
			if !b.virtual || b.floats != 0 {
				t.Errorf("%s: output buffer virtual %v, %d floats; want virtual, 0", st.op.Name, b.virtual, b.floats)
			}
			inner = max(inner, b.tensorLen())
		}
	}
	for _, b := range l.bufs {
		if !b.virtual && b.off+b.floats > int(p.Bytes/4) {
			t.Errorf("buffer at %d (+%d floats) outside the %d-byte arena", b.off, b.floats, p.Bytes)
		}
	}
	off, err := lower(m, FuseOff, splitSmall)
	if err != nil {
		t.Fatal(err)
	}
	po, err := off.plan()
	if err != nil {
		t.Fatal(err)
	}
	// unfused, the 28x28x96 expansion (with its halo) and its depthwise
	// output are live together with the block's input
	if p.Bytes >= po.Bytes || p.Bytes > po.Bytes-4*int64(inner) {
		t.Errorf("fused arena %d bytes, unfused %d: want at least the largest intermediate (%d bytes) less", p.Bytes, po.Bytes, 4*inner)
	}
	if p.Bytes != p.LowerBound {
		t.Errorf("fused arena %d bytes, lower bound %d", p.Bytes, p.LowerBound)
	}
}
