package pass

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pnasml/pnas/ir"
)

// Pass is one IR-to-IR transformation.
type Pass struct {
	Name string // short name, used by Options.Dump and Options.Disable
	// Run rewrites the model in place. It may assume the model verifies
	// and must leave it verifying, computing the same function.
	Run func(*ir.Model) error
	// Required passes cannot be disabled.
	Required bool
}

// Passes is the pass list, in execution order.
var Passes = []Pass{
	{Name: "verify", Run: verify, Required: true},
	{Name: "dead-ops", Run: DeadOps},
	{Name: "fold-bn", Run: FoldBN},
	{Name: "fuse-residual", Run: FuseResidual},
	{Name: "fuse-activation", Run: FuseActivation},
}

// passOrder lists the ordering constraints of Passes: pass a must run
// before pass b. init checks them.
var passOrder = []struct{ a, b, why string }{
	{"verify", "dead-ops", "every pass assumes a verified model"},
	{"verify", "fold-bn", "every pass assumes a verified model"},
	{"verify", "fuse-residual", "every pass assumes a verified model"},
	{"verify", "fuse-activation", "every pass assumes a verified model"},
	{"dead-ops", "fold-bn", "a dead reader of a conv's output would keep its batchnorm from folding"},
	{"dead-ops", "fuse-residual", "a dead reader of a conv's output would keep the add from fusing"},
	{"dead-ops", "fuse-activation", "a dead reader of a producer's output would keep the activation from fusing"},
	{"fold-bn", "fuse-residual", "conv -> batchnorm -> add becomes conv -> add only once the batchnorm is folded"},
	{"fold-bn", "fuse-activation", "conv -> batchnorm -> activation becomes conv -> activation only once the batchnorm is folded"},
}

func init() {
	if err := checkTable(Passes); err != nil {
		panic("pass: " + err.Error())
	}
}

// checkTable checks that pass names are unique and that the ordering
// constraints hold.
func checkTable(passes []Pass) error {
	at := map[string]int{}
	for i, p := range passes {
		if p.Name == "" || p.Run == nil {
			return fmt.Errorf("pass #%d %q has no name or no function", i, p.Name)
		}
		if _, dup := at[p.Name]; dup {
			return fmt.Errorf("pass %q is listed twice", p.Name)
		}
		at[p.Name] = i
	}
	for _, c := range passOrder {
		i, ok1 := at[c.a]
		j, ok2 := at[c.b]
		if !ok1 || !ok2 {
			return fmt.Errorf("ordering constraint %s < %s names an unknown pass", c.a, c.b)
		}
		if i >= j {
			return fmt.Errorf("pass %s must run before %s: %s", c.a, c.b, c.why)
		}
	}
	return nil
}

// Names returns the pass names in execution order.
func Names() []string {
	names := make([]string, len(Passes))
	for i, p := range Passes {
		names[i] = p.Name
	}
	return names
}

// Options controls Apply.
type Options struct {
	// Check verifies the model after every pass; a failure names the pass
	// that broke it.
	Check bool
	// Dump names passes after which the model is printed to DumpTo with
	// Fprint, under a header line "# IR after pass <name>".
	Dump []string
	// DumpTo receives the dumps; it must be set when Dump is not empty.
	DumpTo io.Writer
	// Disable names passes to skip; required passes cannot be disabled.
	Disable []string
}

// Apply runs the enabled passes in order on a clone of m and returns the
// clone; m itself is never modified.
func Apply(m *ir.Model, opt Options) (*ir.Model, error) {
	if m == nil {
		return nil, errors.New("pass: nil model")
	}
	known := map[string]Pass{}
	for _, p := range Passes {
		known[p.Name] = p
	}
	unknown := func(field, name string) error {
		return fmt.Errorf("pass: options: %s: unknown pass %q (expected one of %s)", field, name, strings.Join(Names(), ", "))
	}
	disabled := map[string]bool{}
	for _, name := range opt.Disable {
		p, ok := known[name]
		if !ok {
			return nil, unknown("disable", name)
		}
		if p.Required {
			return nil, fmt.Errorf("pass: options: disable: pass %q is required and cannot be disabled", name)
		}
		disabled[name] = true
	}
	dump := map[string]bool{}
	for _, name := range opt.Dump {
		if _, ok := known[name]; !ok {
			return nil, unknown("dump", name)
		}
		if disabled[name] {
			return nil, fmt.Errorf("pass: options: dump: pass %q is disabled, so there is nothing to dump after it", name)
		}
		dump[name] = true
	}
	if len(dump) > 0 && opt.DumpTo == nil {
		return nil, errors.New("pass: options: dump: no writer (DumpTo is nil)")
	}

	c := m.Clone()
	for _, p := range Passes {
		if disabled[p.Name] {
			continue
		}
		if err := p.Run(c); err != nil {
			return nil, fmt.Errorf("pass %s: %w", p.Name, err)
		}
		if opt.Check {
			if err := c.Verify(); err != nil {
				return nil, fmt.Errorf("pass %s: result does not verify: %w", p.Name, err)
			}
		}
		if dump[p.Name] {
			if _, err := fmt.Fprintf(opt.DumpTo, "# IR after pass %s\n", p.Name); err != nil {
				return nil, fmt.Errorf("pass %s: dump: %w", p.Name, err)
			}
			if err := Fprint(opt.DumpTo, c); err != nil {
				return nil, fmt.Errorf("pass %s: dump: %w", p.Name, err)
			}
		}
	}
	return c, nil
}

func verify(m *ir.Model) error { return m.Verify() }

// Fprint writes a model as text: a header line, one line per op in
// execution order, "OUTPUT = TYPE(INPUTS) ATTRIBUTES block=STAGE/LAYER/CANDIDATE"
// (prefixed by "NAME: " when the op's name differs from its output), and
// the weights with their shapes in key order.
func Fprint(w io.Writer, m *ir.Model) error {
	var b strings.Builder
	fmt.Fprintf(&b, "model %q: input %s %v %s, output %s\n", m.Name, m.Input.Name, m.Input.Shape, m.Input.Layout, m.Output)
	for i := range m.Ops {
		op := &m.Ops[i]
		b.WriteString("  ")
		if op.Output != op.Name {
			fmt.Fprintf(&b, "%s: ", op.Name)
		}
		fmt.Fprintf(&b, "%s = %s(%s)", op.Output, op.Type, strings.Join(op.Inputs, ", "))
		switch op.Type {
		case ir.OpConv2D:
			fmt.Fprintf(&b, " out_channels=%d kernel=%v stride=%v pads=%v groups=%d", op.OutChannels, op.Kernel, op.Stride, op.Pads, op.Groups)
		case ir.OpDense:
			fmt.Fprintf(&b, " units=%d", op.Units)
		case ir.OpBatchNorm:
			fmt.Fprintf(&b, " epsilon=%g", op.Epsilon)
		}
		if op.Bias {
			b.WriteString(" bias")
		}
		if op.Activation != "" && (op.Activation != ir.ActNone || op.Type == ir.OpActivation) {
			fmt.Fprintf(&b, " activation=%s", op.Activation)
		}
		if op.Block != nil {
			fmt.Fprintf(&b, " block=%d/%d/%q", op.Block.Stage, op.Block.Layer, op.Block.Candidate)
		}
		b.WriteByte('\n')
	}
	for _, k := range m.ParamNames() {
		if t := m.Params[k]; t != nil {
			fmt.Fprintf(&b, "  weight %s %v\n", k, t.Shape)
		} else {
			fmt.Fprintf(&b, "  weight %s <nil>\n", k)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
