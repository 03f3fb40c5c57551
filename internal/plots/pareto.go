package plots

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Group is a named set of networks in a Pareto plot ("searched", "random",
// "uniform").
type Group struct {
	Name   string
	Points []Point
}

// Pareto plots accuracy against latency for several groups of networks,
// each with its own colour and marker shape, every point labelled, the
// Pareto front of every group drawn as a step line (the best accuracy
// reachable at each latency) and every target latency as a dashed
// vertical line. A network trained several times is drawn at its mean
// accuracy with a bar from the lowest to the highest.
func Pareto(title string, groups []Group, targetsUS ...float64) ([]byte, error) {
	var all plotter.XYs
	for _, g := range groups {
		for _, q := range g.Points {
			all = append(all, plotter.XY{X: q.LatencyUS, Y: q.Accuracy})
			if q.Lo < q.Hi {
				all = append(all, plotter.XY{X: q.LatencyUS, Y: q.Lo}, plotter.XY{X: q.LatencyUS, Y: q.Hi})
			}
		}
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("plots: no points")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "latency (µs, batch 1, 1 thread, compiled program)"
	p.Y.Label.Text = "top-1 accuracy"
	xmin, xmax, ymin, ymax := plotter.XYRange(all)
	var tl []string
	for _, t := range targetsUS {
		xmin, xmax = math.Min(xmin, t), math.Max(xmax, t)
		tl = append(tl, fmt.Sprintf("%.0f", t))
	}
	mx, my := max((xmax-xmin)*0.08, 0.02*max(xmax, 1)), max((ymax-ymin)*0.08, 0.01)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin-mx, xmax+mx, ymin-my, ymax+my
	// Room below the points for the legend (bottom right): a line per
	// group, the target line and the range bar's entry.
	lines := len(groups) + 2
	p.Y.Min -= (p.Y.Max - p.Y.Min) * 0.035 * float64(lines)
	p.Add(plotter.NewGrid())
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}, draw.RingGlyph{}}
	for gi, g := range groups {
		if len(g.Points) == 0 {
			continue
		}
		col := Palette[gi%len(Palette)]
		xys := make(plotter.XYs, len(g.Points))
		labels := make([]string, len(g.Points))
		for i, q := range g.Points {
			xys[i] = plotter.XY{X: q.LatencyUS, Y: q.Accuracy}
			labels[i] = q.Label
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(4), Shape: shapes[gi%len(shapes)]}
		p.Add(s)
		for _, q := range g.Points {
			if !(q.Lo < q.Hi) {
				continue
			}
			bar, err := plotter.NewLine(plotter.XYs{{X: q.LatencyUS, Y: q.Lo}, {X: q.LatencyUS, Y: q.Hi}})
			if err != nil {
				return nil, err
			}
			bar.Color, bar.Width = col, vg.Points(1)
			p.Add(bar)
		}
		front := paretoFront(xys)
		if len(front) > 1 {
			l, err := plotter.NewLine(front)
			if err != nil {
				return nil, err
			}
			l.StepStyle = plotter.PostStep
			l.Color, l.Width = col, vg.Points(1)
			l.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
			p.Add(l)
		}
		p.Legend.Add(fmt.Sprintf("%s (%d)", g.Name, len(g.Points)), s)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].XAlign = draw.XLeft
			lb.TextStyle[i].Font.Size = vg.Points(7)
			lb.TextStyle[i].Color = col
		}
		lb.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(2)}
		p.Add(lb)
	}
	for _, g := range groups {
		if slices.ContainsFunc(g.Points, func(q Point) bool { return q.Lo < q.Hi }) {
			l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: ymin}, {X: xmin, Y: ymin}})
			if err != nil {
				return nil, err
			}
			l.Color, l.Width = color.Black, vg.Points(1)
			p.Legend.Add("bar: range over trainings, marker: their mean", l)
			break
		}
	}
	for i, t := range targetsUS {
		l, err := plotter.NewLine(plotter.XYs{{X: t, Y: p.Y.Min}, {X: t, Y: p.Y.Max}})
		if err != nil {
			return nil, err
		}
		l.Color = color.RGBA{0xd6, 0x27, 0x28, 0xff}
		l.Width = vg.Points(1.5)
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(l)
		if i == 0 {
			name := "target latency " + tl[0] + " µs"
			if len(tl) > 1 {
				name = "target latencies " + strings.Join(tl, ", ") + " µs"
			}
			p.Legend.Add(name, l)
		}
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	img := vgimg.New(7*vg.Inch, 5*vg.Inch)
	p.Draw(draw.New(img))
	return encode(img)
}

// paretoFront returns the points not dominated by a faster, at least as
// accurate one, by increasing latency.
func paretoFront(xys plotter.XYs) plotter.XYs {
	s := append(plotter.XYs(nil), xys...)
	sort.Slice(s, func(i, j int) bool {
		if s[i].X != s[j].X {
			return s[i].X < s[j].X
		}
		return s[i].Y > s[j].Y
	})
	var front plotter.XYs
	best := math.Inf(-1)
	for _, q := range s {
		if q.Y > best {
			front = append(front, q)
			best = q.Y
		}
	}
	return front
}
