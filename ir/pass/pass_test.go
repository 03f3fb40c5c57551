package pass_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
	"github.com/pnasml/pnas/ir/pass"
	"github.com/pnasml/pnas/search/space"
)

// tinyNet is the shared tiny network with a third, k3 e1 layer (no
// expansion convolution); the builder draws every batchnorm's statistics at
// random.
func tinyNet(t testing.TB) *ir.Model {
	return testnet.Tiny(t, space.Candidate{Kernel: 3, Expand: 1})
}

func build(t testing.TB, b *ir.Builder, out string) *ir.Model {
	t.Helper()
	m, err := b.Model(out)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randStats draws batchnorm statistics far from identity.
func randStats(rng *rand.Rand, c int) (scale, bias, mean, variance []float32) {
	u := func(lo, hi float64) []float32 {
		d := make([]float32, c)
		for i := range d {
			d[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return d
	}
	return u(-2, 2), u(-1, 1), u(-1, 1), u(0.05, 4)
}

// randBN adds a batchnorm with statistics from randStats.
func randBN(b *ir.Builder, rng *rand.Rand, name, in string, c int) string {
	scale, bias, mean, variance := randStats(rng, c)
	return b.BatchNorm(name, in, scale, bias, mean, variance)
}

// deadNet has a live conv -> BN -> relu chain whose conv output is also
// read by a dead branch (pool -> flatten -> dense), plus a dead conv chain
// from the input; DeadOps must clear both before the conv can fold.
func deadNet(t testing.TB) *ir.Model {
	rng := rand.New(rand.NewPCG(3, 9))
	b := ir.NewBuilder("dead", 3, 6, 6, rng)
	c := b.Conv("conv", b.Input(), 4, 3, 1, 1)
	x := randBN(b, rng, "bn", c, 4)
	x = b.Act("act", x, ir.ActReLU)
	dp := b.GlobalPool("dead.pool", c)
	df := b.Flatten("dead.flat", dp)
	b.Dense("dead.fc", df, 3, nil, nil)
	dc := b.Conv("dead.conv", b.Input(), 2, 1, 1, 1)
	b.BatchNorm("dead.bn", dc, nil, nil, nil, nil)
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	return build(t, b, b.Dense("fc", x, 5, nil, nil))
}

// denseBNNet has dense -> BN -> relu and a final dense -> BN that is the
// model output.
func denseBNNet(t testing.TB) *ir.Model {
	rng := rand.New(rand.NewPCG(4, 4))
	b := ir.NewBuilder("densebn", 2, 3, 3, rng)
	x := b.Flatten("flat", b.Input())
	x = b.Dense("fc1", x, 7, nil, nil)
	x = randBN(b, rng, "bn1", x, 7)
	x = b.Act("relu1", x, ir.ActReLU)
	x = b.Dense("fc2", x, 4, nil, nil)
	return build(t, b, randBN(b, rng, "bn2", x, 4))
}

// addReLUNet has a conv followed by add(conv, x) and a standalone relu,
// plus a second such residual whose conv has a bias and a relu6 add.
func addReLUNet(t testing.TB) *ir.Model {
	rng := rand.New(rand.NewPCG(8, 1))
	b := ir.NewBuilder("addrelu", 4, 5, 5, rng)
	x := b.Conv("c0", b.Input(), 4, 3, 1, 1)
	y := b.Conv("c1", x, 4, 3, 1, 1)
	x = b.Add("add1", y, x)
	x = b.Act("relu1", x, ir.ActReLU)
	y = b.ConvFull("c2", x, 4, [2]int{3, 1}, [2]int{1, 1}, [4]int{1, 0, 1, 0}, 2, true, nil, nil)
	x = b.Add("add2", x, y) // the conv is the second input this time
	b.Raw().Ops[len(b.Raw().Ops)-1].Activation = ir.ActReLU6
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	return build(t, b, b.Dense("fc", x, 3, nil, nil))
}

// blockedNet has patterns that must not be rewritten: a BN after a conv
// with an activation, a BN after a conv that has a second reader, an add
// after a conv with an activation, an activation after an op that already
// has one, an add of one conv with itself, add(convA, convB) where the
// later conv is fused, and add(conv, act) where the conv must move behind
// the activation it now reads.
func blockedNet(t testing.TB) *ir.Model {
	rng := rand.New(rand.NewPCG(2, 5))
	b := ir.NewBuilder("blocked", 3, 5, 5, rng)
	a := b.ConvFull("a", b.Input(), 3, [2]int{3, 3}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, 1, false, nil, nil)
	b.Raw().Ops[len(b.Raw().Ops)-1].Activation = ir.ActReLU
	x := randBN(b, rng, "a.bn", a, 3) // a has relu: no fold
	c := b.Conv("c", x, 3, 1, 1, 1)
	y := randBN(b, rng, "c.bn", c, 3) // c has two readers: no fold
	z := b.Add("sum", y, c)           // c has two readers: no residual
	z = b.Act("relu6", z, ir.ActReLU6)
	z = b.Act("relu", z, ir.ActReLU) // the add already has relu6: stays
	d := b.Conv("d", z, 3, 3, 1, 1)
	dd := b.Add("twice", d, d) // d read twice: no residual
	e := b.Conv("e", dd, 3, 3, 1, 3)
	f := b.Conv("f", dd, 3, 1, 1, 1)
	ef := b.Add("ef", e, f) // both qualify: f (the later) is fused
	g := b.Conv("g", ef, 3, 1, 1, 1)
	h := b.Act("h", ef, ir.ActReLU) // ef has two readers: stays
	gh := b.Add("gh", g, h)         // g must move behind h, which it reads
	k := b.ConvFull("k", gh, 3, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, false, nil, nil)
	b.Raw().Ops[len(b.Raw().Ops)-1].Activation = ir.ActReLU6
	kk := b.Add("kk", k, gh) // k has its own activation: no residual
	g = b.GlobalPool("pool", kk)
	g = b.Flatten("flat", g)
	return build(t, b, b.Dense("fc", g, 2, nil, nil))
}

var models = []struct {
	name string
	make func(testing.TB) *ir.Model
}{
	{"tiny", tinyNet},
	{"dead", deadNet},
	{"densebn", denseBNNet},
	{"addrelu", addReLUNet},
	{"blocked", blockedNet},
}

// sameFunction runs both models on the same random batch and requires the
// outputs to agree within 1e-5 relative to the largest output magnitude.
func sameFunction(t *testing.T, what string, want, got *ir.Model) {
	t.Helper()
	rng := rand.New(rand.NewPCG(42, 43))
	const n = 3
	in := make([]float32, n*want.Input.Shape[0]*want.Input.Shape[1]*want.Input.Shape[2])
	for i := range in {
		in[i] = float32(rng.NormFloat64())
	}
	a, err := interp.Run(want, in, n)
	if err != nil {
		t.Fatalf("%s: before: %v", what, err)
	}
	b, err := interp.Run(got, in, n)
	if err != nil {
		t.Fatalf("%s: after: %v", what, err)
	}
	if len(a) != len(b) {
		t.Fatalf("%s: output has %d values, want %d", what, len(b), len(a))
	}
	scale := 1.0
	for _, v := range a {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i := range a {
		if d := math.Abs(float64(a[i]) - float64(b[i])); !(d <= 1e-5*scale) {
			t.Fatalf("%s: output %d = %v, want %v (difference %.3g, scale %.3g)", what, i, b[i], a[i], d, scale)
		}
	}
}

func TestEachPassPreservesFunction(t *testing.T) {
	for _, mc := range models {
		for _, p := range pass.Passes {
			t.Run(mc.name+"/"+p.Name, func(t *testing.T) {
				m := mc.make(t)
				c := m.Clone()
				if err := p.Run(c); err != nil {
					t.Fatal(err)
				}
				if err := c.Verify(); err != nil {
					t.Fatalf("after %s: %v\n%s", p.Name, err, dump(c))
				}
				if c.Output != m.Output {
					t.Errorf("output tensor renamed from %q to %q", m.Output, c.Output)
				}
				sameFunction(t, p.Name, m, c)
			})
		}
		t.Run(mc.name+"/all", func(t *testing.T) {
			m := mc.make(t)
			c, err := pass.Apply(m, pass.Options{Check: true})
			if err != nil {
				t.Fatal(err)
			}
			sameFunction(t, "all passes", m, c)
			// a second run changes nothing
			again, err := pass.Apply(c, pass.Options{Check: true})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c, again); diff != "" {
				t.Errorf("passes are not idempotent (-first +second):\n%s", diff)
			}
		})
	}
}

func dump(m *ir.Model) string {
	var b bytes.Buffer
	if err := pass.Fprint(&b, m); err != nil {
		return err.Error()
	}
	return b.String()
}

// opSummary describes ops as "type(inputs)->output/activation".
func opSummary(m *ir.Model) []string {
	var s []string
	for _, op := range m.Ops {
		s = append(s, fmt.Sprintf("%s %s(%s)->%s/%s", op.Name, op.Type, strings.Join(op.Inputs, ","), op.Output, op.FusedActivation()))
	}
	return s
}

func applyAll(t *testing.T, m *ir.Model) *ir.Model {
	t.Helper()
	c, err := pass.Apply(m, pass.Options{Check: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTinyNetLowering(t *testing.T) {
	m := tinyNet(t)
	c := applyAll(t, m)
	want := []string{
		"stem.conv conv2d(input)->stem.conv/relu6",
		"s1.l0.expand.conv conv2d(stem.conv)->s1.l0.expand.conv/relu6",
		"s1.l0.dw.conv conv2d(s1.l0.expand.conv)->s1.l0.dw.conv/relu6",
		"s1.l0.project.conv conv2d(s1.l0.dw.conv)->s1.l0.project.conv/none",
		"s1.l1.expand.conv conv2d(s1.l0.project.conv)->s1.l1.expand.conv/relu6",
		"s1.l1.dw.conv conv2d(s1.l1.expand.conv)->s1.l1.dw.conv/relu6",
		"s1.l1.project.conv conv2d(s1.l1.dw.conv,s1.l0.project.conv)->s1.l1.project.conv/none",
		"s1.l2.dw.conv conv2d(s1.l1.project.conv)->s1.l2.dw.conv/relu6",
		"s1.l2.project.conv conv2d(s1.l2.dw.conv,s1.l1.project.conv)->s1.l2.project.conv/none",
		"head.conv conv2d(s1.l2.project.conv)->head.conv/relu6",
		"pool global_avg_pool(head.conv)->pool/none",
		"flatten flatten(pool)->flatten/none",
		"fc dense(flatten)->fc/none",
	}
	if diff := cmp.Diff(want, opSummary(c)); diff != "" {
		t.Fatalf("ops after all passes (-want +got):\n%s", diff)
	}
	// every conv got its batchnorm folded into a bias; no BN weights remain
	for _, op := range c.Ops {
		if op.Type == ir.OpConv2D && (!op.Bias || c.Param(op.Name, "bias") == nil) {
			t.Errorf("conv %q has no folded bias", op.Name)
		}
	}
	for _, k := range c.ParamNames() {
		if strings.Contains(k, ".bn.") {
			t.Errorf("batchnorm weight %q survived", k)
		}
	}
	// the residual MBConv block is exactly 3 conv ops with the residual
	// folded in, and the block annotations still give the same keys
	var block []ir.Op
	for _, op := range c.Ops {
		if op.Block != nil && *op.Block == (ir.Block{Stage: 1, Layer: 1, Candidate: "mbconv k5 e6"}) {
			block = append(block, op)
		}
	}
	if len(block) != 3 {
		t.Fatalf("block s1.l1 has %d ops, want 3 convs", len(block))
	}
	for i, act := range []ir.Activation{ir.ActReLU6, ir.ActReLU6, ir.ActNone} {
		if block[i].Type != ir.OpConv2D || block[i].FusedActivation() != act {
			t.Errorf("block op %d = %s activation %s, want conv2d %s", i, block[i].Type, block[i].FusedActivation(), act)
		}
	}
	if len(block[2].Inputs) != 2 {
		t.Errorf("projection conv has inputs %v, want the block input as residual", block[2].Inputs)
	}
	before, err := archnet.Blocks(m)
	if err != nil {
		t.Fatal(err)
	}
	after, err := archnet.Blocks(c)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(bs []archnet.BlockRef) (k []string) {
		for _, b := range bs {
			k = append(k, b.Key)
		}
		return k
	}
	if diff := cmp.Diff(keys(before), keys(after)); diff != "" {
		t.Errorf("latency keys changed (-before +after):\n%s", diff)
	}
	sb, _ := m.Stats()
	sa, _ := c.Stats()
	if sa.MACs != sb.MACs {
		t.Errorf("MACs changed from %d to %d", sb.MACs, sa.MACs)
	}
}

func TestDeadOps(t *testing.T) {
	m := deadNet(t)
	c := m.Clone()
	if err := pass.DeadOps(c); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, op := range c.Ops {
		names = append(names, op.Name)
	}
	if diff := cmp.Diff([]string{"conv", "bn", "act", "pool", "flat", "fc"}, names); diff != "" {
		t.Errorf("ops after dead-ops (-want +got):\n%s", diff)
	}
	for _, k := range c.ParamNames() {
		if strings.HasPrefix(k, "dead.") {
			t.Errorf("weight %q of a dead op survived", k)
		}
	}
	if len(c.Params) != 1+4+2 {
		t.Errorf("%d weights left, want 7: %v", len(c.Params), c.ParamNames())
	}
	// without dead-ops the dead pool keeps the BN from folding
	noDead, err := pass.Apply(m, pass.Options{Check: true, Disable: []string{"dead-ops"}})
	if err != nil {
		t.Fatal(err)
	}
	if !hasType(noDead, ir.OpBatchNorm) {
		t.Errorf("BN folded although a dead reader shares the conv output")
	}
	all := applyAll(t, m)
	want := []string{
		"conv conv2d(input)->conv/relu",
		"pool global_avg_pool(conv)->pool/none",
		"flat flatten(pool)->flat/none",
		"fc dense(flat)->fc/none",
	}
	if diff := cmp.Diff(want, opSummary(all)); diff != "" {
		t.Errorf("ops after all passes (-want +got):\n%s", diff)
	}
}

func hasType(m *ir.Model, t ir.OpType) bool {
	for _, op := range m.Ops {
		if op.Type == t {
			return true
		}
	}
	return false
}

func TestDenseBN(t *testing.T) {
	c := applyAll(t, denseBNNet(t))
	want := []string{
		"flat flatten(input)->flat/none",
		"fc1 dense(flat)->fc1/relu",
		"fc2 dense(fc1)->bn2/none", // the model output keeps its name
	}
	if diff := cmp.Diff(want, opSummary(c)); diff != "" {
		t.Errorf("ops after all passes (-want +got):\n%s", diff)
	}
	if c.Output != "bn2" {
		t.Errorf("output = %q, want bn2", c.Output)
	}
	if d := dump(c); !strings.Contains(d, "\n  fc2: bn2 = dense(fc1) units=4 bias\n") {
		t.Errorf("dump does not show the renamed output as NAME: OUTPUT = ...:\n%s", d)
	}
}

func TestAddReLU(t *testing.T) {
	c := applyAll(t, addReLUNet(t))
	want := []string{
		"c0 conv2d(input)->c0/none",
		"c1 conv2d(c0,c0)->c1/relu",
		"c2 conv2d(c1,c1)->c2/relu6",
		"pool global_avg_pool(c2)->pool/none",
		"flat flatten(pool)->flat/none",
		"fc dense(flat)->fc/none",
	}
	if diff := cmp.Diff(want, opSummary(c)); diff != "" {
		t.Errorf("ops after all passes (-want +got):\n%s", diff)
	}
}

func TestBlockedPatterns(t *testing.T) {
	c := applyAll(t, blockedNet(t))
	want := []string{
		"a conv2d(input)->a/relu",
		"a.bn batchnorm(a)->a.bn/none",
		"c conv2d(a.bn)->c/none",
		"c.bn batchnorm(c)->c.bn/none",
		"sum add(c.bn,c)->sum/relu6",
		"relu activation(sum)->relu/relu",
		"d conv2d(relu)->d/none",
		"twice add(d,d)->twice/none",
		"e conv2d(twice)->e/none",
		"f conv2d(twice,e)->f/none",
		"h activation(f)->h/relu",
		"g conv2d(f,h)->g/none",
		"k conv2d(g)->k/relu6",
		"kk add(k,g)->kk/none",
		"pool global_avg_pool(kk)->pool/none",
		"flat flatten(pool)->flat/none",
		"fc dense(flat)->fc/none",
	}
	if diff := cmp.Diff(want, opSummary(c)); diff != "" {
		t.Errorf("ops after all passes (-want +got):\n%s", diff)
	}
}

func TestApplyDoesNotModifyInput(t *testing.T) {
	m := tinyNet(t)
	snapshot := m.Clone()
	c, err := pass.Apply(m, pass.Options{Check: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(snapshot, m); diff != "" {
		t.Fatalf("Apply modified its input (-before +after):\n%s", diff)
	}
	// the result shares no storage with the input
	c.Param("stem.conv", "weight").Data[0] = 1e6
	c.Ops[0].Inputs[0] = "changed"
	c.Ops[0].Block.Layer = 99
	if diff := cmp.Diff(snapshot, m); diff != "" {
		t.Fatalf("the result aliases the input (-before +after):\n%s", diff)
	}
}

func TestDump(t *testing.T) {
	var buf bytes.Buffer
	_, err := pass.Apply(tinyNet(t), pass.Options{Dump: []string{"fold-bn", "fuse-activation"}, DumpTo: &buf})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	parts := strings.Split(out, "# IR after pass ")
	if len(parts) != 3 || parts[0] != "" {
		t.Fatalf("want two dumps, got:\n%s", out)
	}
	if !strings.HasPrefix(parts[1], "fold-bn\n") || !strings.HasPrefix(parts[2], "fuse-activation\n") {
		t.Fatalf("dumps do not name their passes in order:\n%s", out)
	}
	if strings.Contains(parts[1], "batchnorm") || !strings.Contains(parts[1], "activation(") {
		t.Errorf("after fold-bn: want no batchnorm and the activations still standalone:\n%s", parts[1])
	}
	if strings.Contains(parts[2], "activation(") || !strings.Contains(parts[2], "activation=relu6") {
		t.Errorf("after fuse-activation: want activations fused:\n%s", parts[2])
	}
	for _, line := range []string{
		`model "tiny": input input [1 9 9] NCHW, output fc`,
		`  s1.l1.project.conv = conv2d(s1.l1.dw.conv, s1.l0.project.conv) out_channels=12 kernel=[1 1] stride=[1 1] pads=[0 0 0 0] groups=1 bias block=1/1/"mbconv k5 e6"`,
		`  weight stem.conv.bias [8]`,
	} {
		if !strings.Contains(parts[2], line+"\n") {
			t.Errorf("dump lacks line %q:\n%s", line, parts[2])
		}
	}
}

func TestOptionErrors(t *testing.T) {
	m := tinyNet(t)
	for _, tc := range []struct {
		opt  pass.Options
		want string
	}{
		{pass.Options{Dump: []string{"fold-bm"}, DumpTo: &bytes.Buffer{}}, `dump: unknown pass "fold-bm" (expected one of verify, dead-ops, fold-bn, fuse-residual, fuse-activation)`},
		{pass.Options{Disable: []string{"nope"}}, `disable: unknown pass "nope"`},
		{pass.Options{Disable: []string{"verify"}}, `pass "verify" is required`},
		{pass.Options{Dump: []string{"fold-bn"}}, "DumpTo is nil"},
		{pass.Options{Dump: []string{"fold-bn"}, Disable: []string{"fold-bn"}, DumpTo: &bytes.Buffer{}}, "is disabled"},
	} {
		if _, err := pass.Apply(m, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Apply(%+v) error = %v, want one containing %q", tc.opt, err, tc.want)
		}
	}
	if _, err := pass.Apply(nil, pass.Options{}); err == nil {
		t.Error("Apply(nil) succeeded")
	}
	bad := m.Clone()
	delete(bad.Params, "fc.bias")
	if _, err := pass.Apply(bad, pass.Options{}); err == nil || !strings.Contains(err.Error(), `pass verify: `) {
		t.Errorf("Apply on an invalid model: error = %v, want the verify pass to reject it", err)
	}
}

func TestDisable(t *testing.T) {
	m := tinyNet(t)
	c, err := pass.Apply(m, pass.Options{Check: true, Disable: []string{"fold-bn"}})
	if err != nil {
		t.Fatal(err)
	}
	// BNs stay, so neither activations nor residuals can fuse
	if len(c.Ops) != len(m.Ops) {
		t.Errorf("with fold-bn disabled %d ops remain, want all %d", len(c.Ops), len(m.Ops))
	}
	sameFunction(t, "fold-bn disabled", m, c)
}
