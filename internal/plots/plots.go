// Package plots renders the pictures pnas shows its users as PNG files:
// architecture parameters over a search, the derived architecture drawn as
// blocks, and latency against accuracy. It uses gonum.org/v1/plot with its
// embedded Liberation fonts, so it works offline and on headless machines.
package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/font/liberation"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/pnasml/pnas/search/space"
)

func init() {
	font.DefaultCache.Add(liberation.Collection())
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	plotter.DefaultFont = plot.DefaultFont
}

// Palette is the colour of each candidate index (cycled).
var Palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0xe3, 0x77, 0xc2, 0xff},
}

// AlphaHistory is the softmax(alpha) of every searchable layer over a search.
type AlphaHistory struct {
	Candidates []string      // candidate names, in alpha order
	Steps      []float64     // x values (step or epoch) of each record
	Probs      [][][]float64 // [layer][record][candidate]
	Layers     []string      // layer names ("s1.l0", ...)
}

// Alpha renders one small panel per layer with p of every candidate over
// time, and returns PNG bytes.
func Alpha(h AlphaHistory) ([]byte, error) {
	n := len(h.Probs)
	if n == 0 {
		return nil, fmt.Errorf("plots: no layers to plot")
	}
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for r := range plots {
		plots[r] = make([]*plot.Plot, cols)
		for c := range plots[r] {
			l := r*cols + c
			p := plot.New()
			plots[r][c] = p
			if l >= n {
				p.HideAxes()
				continue
			}
			name := fmt.Sprintf("layer %d", l)
			if l < len(h.Layers) {
				name = h.Layers[l]
			}
			p.Title.Text = name
			p.Y.Min, p.Y.Max = 0, 1
			p.Y.Label.Text = "p"
			p.X.Label.Text = "step"
			for j, cand := range h.Candidates {
				pts := make(plotter.XYs, 0, len(h.Probs[l]))
				for t, rec := range h.Probs[l] {
					if j < len(rec) && t < len(h.Steps) {
						pts = append(pts, plotter.XY{X: h.Steps[t], Y: rec[j]})
					}
				}
				style := draw.LineStyle{Color: Palette[j%len(Palette)], Width: vg.Points(1.5)}
				if l == 0 {
					// every candidate, also those the first layer lacks (Zero)
					p.Legend.Add(cand, &plotter.Line{LineStyle: style})
				}
				if len(pts) == 0 {
					continue
				}
				line, err := plotter.NewLine(pts)
				if err != nil {
					return nil, err
				}
				line.LineStyle = style
				p.Add(line)
			}
			p.Legend.Top = true
			p.Legend.TextStyle.Font.Size = vg.Points(7)
		}
	}
	w, hgt := vg.Length(cols)*3.2*vg.Inch, vg.Length(rows)*2.4*vg.Inch
	img := vgimg.New(w, hgt)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 2, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for c := range plots[r] {
			plots[r][c].Draw(canvases[r][c])
		}
	}
	return encode(img)
}

func encode(img *vgimg.Canvas) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ArchBlock is one block of a derived architecture.
type ArchBlock struct {
	Label  string // e.g. "stem", "MB6 5x5", "head"
	Kernel int    // 0 for non-MBConv blocks
	Expand int
	Stride int
	Out    space.Shape
	Zero   bool // a skipped layer: drawn as a thin gap marker
}

// Architecture draws the blocks left to right, in the style of the
// ProxylessNAS paper's figures: box width grows with the kernel size, box
// height with the expansion ratio, colour by kernel size; labels give the
// op and output shape. Skipped layers are dashed outlines.
func Architecture(title string, blocks []ArchBlock) ([]byte, error) {
	if len(blocks) == 0 {
		return nil, fmt.Errorf("plots: no blocks to draw")
	}
	unit := vg.Millimeter
	widthOf := func(b ArchBlock) vg.Length {
		switch {
		case b.Zero:
			return 4 * unit
		case b.Kernel > 0:
			return vg.Length(4+b.Kernel) * unit
		}
		return 9 * unit
	}
	var total vg.Length
	for _, b := range blocks {
		total += widthOf(b) + 3*unit
	}
	W := max(total+20*unit, 130*unit)
	H := 100 * unit
	img := vgimg.New(W, H)
	dc := draw.New(img)
	dc.SetColor(color.White)
	bg := vg.Path{}
	bg.Move(vg.Point{})
	bg.Line(vg.Point{X: W})
	bg.Line(vg.Point{X: W, Y: H})
	bg.Line(vg.Point{Y: H})
	bg.Close()
	dc.Fill(bg)
	fnt := font.From(plot.DefaultFont, 9)
	face := font.DefaultCache.Lookup(fnt, 9)
	small := font.DefaultCache.Lookup(font.From(plot.DefaultFont, 6), 6)
	dc.SetColor(color.Black)
	dc.FillString(face, vg.Point{X: 10 * unit, Y: H - 8*unit}, title)
	x := 10 * unit
	mid := H/2 - 4*unit
	kColor := map[int]color.Color{3: Palette[0], 5: Palette[1], 7: Palette[3]}
	for _, b := range blocks {
		w := widthOf(b)
		h := 20 * unit
		if b.Kernel > 0 {
			h = vg.Length(12+5*b.Expand) * unit
		}
		r := vg.Rectangle{Min: vg.Point{X: x, Y: mid - h/2}, Max: vg.Point{X: x + w, Y: mid + h/2}}
		path := vg.Path{}
		path.Move(r.Min)
		path.Line(vg.Point{X: r.Max.X, Y: r.Min.Y})
		path.Line(r.Max)
		path.Line(vg.Point{X: r.Min.X, Y: r.Max.Y})
		path.Close()
		if b.Zero {
			dc.SetLineDash([]vg.Length{unit, unit}, 0)
			dc.SetColor(color.Gray{0x99})
			dc.Stroke(path)
			dc.SetLineDash(nil, 0)
		} else {
			c, ok := kColor[b.Kernel]
			if !ok {
				c = color.Gray{0xbb}
			}
			dc.SetColor(c)
			dc.Fill(path)
			dc.SetColor(color.Black)
			dc.SetLineWidth(vg.Points(0.5))
			dc.Stroke(path)
		}
		// vertical labels below and above the box
		dc.Push()
		dc.Translate(vg.Point{X: x + w/2 + 1*unit, Y: mid - h/2 - 2*unit})
		dc.Rotate(-math.Pi / 2)
		dc.SetColor(color.Black)
		dc.FillString(small, vg.Point{}, b.Label)
		dc.Pop()
		if !b.Zero {
			dc.Push()
			dc.Translate(vg.Point{X: x + w/2 - 1*unit, Y: mid + h/2 + 2*unit})
			dc.Rotate(math.Pi / 2)
			dc.SetColor(color.Gray{0x44})
			dc.FillString(small, vg.Point{}, b.Out.String())
			dc.Pop()
		}
		x += w + 3*unit
	}
	// legend
	lx := 10 * unit
	for _, k := range []int{3, 5, 7} {
		dc.SetColor(kColor[k])
		sq := vg.Path{}
		sq.Move(vg.Point{X: lx, Y: 4 * unit})
		sq.Line(vg.Point{X: lx + 3*unit, Y: 4 * unit})
		sq.Line(vg.Point{X: lx + 3*unit, Y: 7 * unit})
		sq.Line(vg.Point{X: lx, Y: 7 * unit})
		sq.Close()
		dc.Fill(sq)
		dc.SetColor(color.Black)
		dc.FillString(small, vg.Point{X: lx + 4*unit, Y: 4.5 * unit}, fmt.Sprintf("%dx%d", k, k))
		lx += 16 * unit
	}
	dc.FillString(small, vg.Point{X: lx, Y: 4.5 * unit}, "height: expansion ratio; dashed: skipped layer")
	return encode(img)
}

// Point is one network on a latency/accuracy plot.
type Point struct {
	Label     string
	LatencyUS float64
	Accuracy  float64
	// Lo and Hi, when Lo < Hi, are the lowest and highest accuracy of
	// several trainings of the network (Accuracy is then their mean); the
	// Pareto plot draws them as an error bar.
	Lo, Hi float64
}

// LatencyAccuracy plots accuracy against latency, one labelled point per
// network.
func LatencyAccuracy(title string, pts []Point) ([]byte, error) {
	if len(pts) == 0 {
		return nil, fmt.Errorf("plots: no points")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "latency (µs, batch 1)"
	p.Y.Label.Text = "accuracy"
	xys := make(plotter.XYs, len(pts))
	labels := make([]string, len(pts))
	for i, q := range pts {
		xys[i] = plotter.XY{X: q.LatencyUS, Y: q.Accuracy}
		labels[i] = q.Label
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	s.GlyphStyle.Color = Palette[0]
	s.GlyphStyle.Radius = vg.Points(3)
	p.Add(s)
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XLeft
		l.TextStyle[i].Font.Size = vg.Points(8)
	}
	l.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
	p.Add(l)
	p.Add(plotter.NewGrid())
	// a margin around the points, so that none sits on an axis
	xmin, xmax, ymin, ymax := plotter.XYRange(xys)
	pad := func(lo, hi, min float64) (float64, float64) {
		m := max((hi-lo)*0.08, min)
		return lo - m, hi + m
	}
	p.X.Min, p.X.Max = pad(xmin, xmax, 0.02*max(xmax, 1))
	p.Y.Min, p.Y.Max = pad(ymin, ymax, 0.02)
	img := vgimg.New(6*vg.Inch, 4*vg.Inch)
	p.Draw(draw.New(img))
	return encode(img)
}

// distinctTicks are gonum's default ticks; when their labels repeat (on a
// narrow range gonum can label 1.85 and 1.9 both "1.9"), the labelled ticks
// get as many decimals as it takes to tell them apart.
type distinctTicks struct{}

func (distinctTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	if labelsDistinct(ticks) {
		return ticks
	}
	for prec := 1; prec <= 8; prec++ {
		out := append([]plot.Tick(nil), ticks...)
		for i := range out {
			if out[i].Label != "" {
				out[i].Label = strconv.FormatFloat(out[i].Value, 'f', prec, 64)
			}
		}
		if labelsDistinct(out) {
			return out
		}
	}
	return ticks
}

func labelsDistinct(ticks []plot.Tick) bool {
	seen := map[string]bool{}
	for _, t := range ticks {
		if t.Label == "" {
			continue
		}
		if seen[t.Label] {
			return false
		}
		seen[t.Label] = true
	}
	return true
}
