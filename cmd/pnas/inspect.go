package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/pnasml/pnas/ir"
)

// InspectCmd prints a model summary.
type InspectCmd struct {
	Model string `arg:"" help:"Model file (NAME.json, weights in NAME.safetensors beside it)." type:"existingfile"`
}

// Help gives examples.
func (InspectCmd) Help() string {
	return "Examples:\n  pnas inspect model.json\n  pnas inspect runs/fm/model.json"
}

// Run prints the table.
func (c *InspectCmd) Run(g *globals) error {
	m, err := ir.Load(c.Model)
	if err != nil {
		return err
	}
	st, err := m.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "model %s (format %s v%d, producer %s)\n", m.Name, m.Format, m.Version, m.Producer)
	fmt.Fprintf(g.stdout, "input %s %v %s", m.Input.Name, m.Input.Shape, m.Input.Layout)
	if len(m.Input.Labels) > 0 {
		fmt.Fprintf(g.stdout, ", %d classes", len(m.Input.Labels))
	}
	fmt.Fprintln(g.stdout)
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "#\top\ttype\toutput\tparams\tMACs\tblock\t")
	for i, o := range st.Ops {
		op := &m.Ops[i]
		typ := string(o.Type)
		if op.Type == ir.OpConv2D {
			typ = fmt.Sprintf("conv %dx%d/%d", op.Kernel[0], op.Kernel[1], op.Stride[0])
			if op.Groups > 1 {
				typ += fmt.Sprintf(" g%d", op.Groups)
			}
		}
		if a := op.FusedActivation(); a != ir.ActNone && op.Type != ir.OpActivation {
			typ += "+" + string(a)
		} else if op.Type == ir.OpActivation {
			typ = string(a)
		}
		if op.Type == ir.OpConv2D && len(op.Inputs) == 2 {
			typ += "+res"
		}
		blk := ""
		if op.Block != nil {
			blk = fmt.Sprintf("%d.%d %s", op.Block.Stage, op.Block.Layer, op.Block.Candidate)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", i, o.Name, typ, shapeString(o.OutShape), count(int64(o.Params)), count(o.MACs), blk)
	}
	tw.Flush()
	fmt.Fprintf(g.stdout, "total: %d ops, %s parameters (%s), %s MACs, peak activations %s (during %s)\n",
		len(st.Ops), count(int64(st.Params)), bytesString(int64(st.Params)*4), count(st.MACs), bytesString(st.PeakActivationBytes), st.PeakOp)
	return nil
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "x")
}

// count renders n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
