package plots

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var colorGrey = color.NRGBA{0x7f, 0x7f, 0x7f, 0x30}

// AlphaLogOdds renders one panel per layer with the centred log-probability
// of every candidate, ln p_j minus the mean of ln p_k over the layer's
// candidates (alpha up to a constant), on an axis scaled to the data, so
// that the small movements of a short search show; a last panel gives the
// entropy of every layer in nats (ln K is uniform). fixedSteps > 0 shades
// the first steps, in which alpha does not change (the warm-up, and the
// first search epoch when it has no architecture steps), and labels them
// with fixedLabel (default "warm-up (alpha fixed)").
func AlphaLogOdds(h AlphaHistory, fixedSteps float64, fixedLabel string) ([]byte, error) {
	if fixedLabel == "" {
		fixedLabel = "warm-up (alpha fixed)"
	}
	n := len(h.Probs)
	if n == 0 || len(h.Steps) == 0 {
		return nil, fmt.Errorf("plots: no layers to plot")
	}
	panels := n + 1
	cols := int(math.Ceil(math.Sqrt(float64(panels))))
	rows := (panels + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	shadeWarmup := func(p *plot.Plot, lo, hi float64) {
		if fixedSteps <= 0 {
			return
		}
		poly, err := plotter.NewPolygon(plotter.XYs{{X: 0, Y: lo}, {X: fixedSteps, Y: lo}, {X: fixedSteps, Y: hi}, {X: 0, Y: hi}})
		if err != nil {
			return
		}
		poly.Color = colorGrey
		poly.LineStyle.Width = 0
		p.Add(poly)
		p.Legend.Add(fixedLabel, poly)
	}
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
		for c := range grid[r] {
			i := r*cols + c
			p := plot.New()
			grid[r][c] = p
			p.Y.Tick.Marker = distinctTicks{}
			p.X.Label.Text = "step"
			p.Legend.Top = true
			p.Legend.TextStyle.Font.Size = vg.Points(7)
			switch {
			case i < n:
				name := fmt.Sprintf("layer %d", i)
				if i < len(h.Layers) {
					name = h.Layers[i]
				}
				p.Title.Text = name + ": ln p - mean ln p"
				type series struct {
					j   int
					xys plotter.XYs
				}
				var ss []series
				lo, hi := math.Inf(1), math.Inf(-1)
				for j := range h.Candidates {
					var xys plotter.XYs
					for t, rec := range h.Probs[i] {
						if j >= len(rec) || t >= len(h.Steps) || rec[j] <= 0 {
							continue
						}
						var mean float64
						for _, q := range rec {
							mean += math.Log(math.Max(q, 1e-300))
						}
						mean /= float64(len(rec))
						v := math.Log(rec[j]) - mean
						xys = append(xys, plotter.XY{X: h.Steps[t], Y: v})
						lo, hi = math.Min(lo, v), math.Max(hi, v)
					}
					ss = append(ss, series{j, xys})
				}
				if lo > hi {
					lo, hi = -1, 1
				}
				m := math.Max((hi-lo)*0.1, 1e-4)
				lo, hi = lo-m, hi+m
				p.Y.Min, p.Y.Max = lo, hi
				shadeWarmup(p, lo, hi)
				for _, s := range ss {
					style := draw.LineStyle{Color: Palette[s.j%len(Palette)], Width: vg.Points(1.5)}
					if i == 0 {
						p.Legend.Add(h.Candidates[s.j], &plotter.Line{LineStyle: style})
					}
					if len(s.xys) == 0 {
						continue
					}
					l, err := plotter.NewLine(s.xys)
					if err != nil {
						return nil, err
					}
					l.LineStyle = style
					p.Add(l)
				}
			case i == n:
				p.Title.Text = "entropy per layer (nats)"
				lo, hi := math.Inf(1), math.Inf(-1)
				var lines []*plotter.Line
				for l := range n {
					var xys plotter.XYs
					for t, rec := range h.Probs[l] {
						if t >= len(h.Steps) {
							continue
						}
						var e float64
						for _, q := range rec {
							if q > 0 {
								e -= q * math.Log(q)
							}
						}
						xys = append(xys, plotter.XY{X: h.Steps[t], Y: e})
						lo, hi = math.Min(lo, e), math.Max(hi, e)
					}
					if len(xys) == 0 {
						continue
					}
					line, err := plotter.NewLine(xys)
					if err != nil {
						return nil, err
					}
					line.Color = Palette[l%len(Palette)]
					line.Width = vg.Points(1)
					if l >= len(Palette) {
						line.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
					}
					lines = append(lines, line)
				}
				if lo > hi {
					lo, hi = 0, 1
				}
				m := math.Max((hi-lo)*0.1, 1e-4)
				p.Y.Min, p.Y.Max = lo-m, hi+m
				shadeWarmup(p, p.Y.Min, p.Y.Max)
				for _, l := range lines {
					p.Add(l)
				}
			default:
				p.HideAxes()
			}
		}
	}
	w, hgt := vg.Length(cols)*3.2*vg.Inch, vg.Length(rows)*2.4*vg.Inch
	img := vgimg.New(w, hgt)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(grid, tiles, dc)
	for r := range grid {
		for c := range grid[r] {
			grid[r][c].Draw(canvases[r][c])
		}
	}
	return encode(img)
}
