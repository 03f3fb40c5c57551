package plots

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// TrainEpoch is one epoch of a training for the Training plot.
type TrainEpoch struct {
	Epoch         int
	Warmup        bool // a learning-rate warm-up epoch (shaded and labelled)
	TrainLoss     float64
	TrainAccuracy float64
	HeldLoss      float64
	HeldAccuracy  float64
}

// Training renders two panels side by side, loss and accuracy per epoch,
// each with the training (mean over the epoch's steps, augmented) and the
// held-out curve; warm-up epochs are shaded and labelled. best marks the
// selected epoch (-1: none).
func Training(title string, epochs []TrainEpoch, best int) ([]byte, error) {
	if len(epochs) == 0 {
		return nil, fmt.Errorf("plots: no epochs")
	}
	panel := func(name string, train, held func(TrainEpoch) float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title + ": " + name
		p.X.Label.Text = "epoch"
		p.Y.Label.Text = name
		var tr, ho plotter.XYs
		warm := -1
		for _, e := range epochs {
			x := float64(e.Epoch + 1)
			tr = append(tr, plotter.XY{X: x, Y: train(e)})
			ho = append(ho, plotter.XY{X: x, Y: held(e)})
			if e.Warmup {
				warm = e.Epoch
			}
		}
		ymin, ymax := tr[0].Y, tr[0].Y
		for _, xy := range append(append(plotter.XYs{}, tr...), ho...) {
			ymin, ymax = min(ymin, xy.Y), max(ymax, xy.Y)
		}
		m := max((ymax-ymin)*0.08, 0.01)
		p.Y.Min, p.Y.Max = ymin-m, ymax+m
		p.X.Min, p.X.Max = 0.5, float64(epochs[len(epochs)-1].Epoch)+1.5
		if warm >= 0 {
			shade, err := plotter.NewPolygon(plotter.XYs{{X: 0.5, Y: p.Y.Min}, {X: float64(warm) + 1.5, Y: p.Y.Min},
				{X: float64(warm) + 1.5, Y: p.Y.Max}, {X: 0.5, Y: p.Y.Max}})
			if err != nil {
				return nil, err
			}
			shade.Color = color.NRGBA{0x7f, 0x7f, 0x7f, 0x30}
			shade.LineStyle.Width = 0
			p.Add(shade)
			p.Legend.Add("learning-rate warm-up", shade)
		}
		for i, s := range []struct {
			name string
			xys  plotter.XYs
		}{{"training (augmented)", tr}, {"held-out", ho}} {
			l, pts, err := plotter.NewLinePoints(s.xys)
			if err != nil {
				return nil, err
			}
			l.Color, pts.Color = Palette[i], Palette[i]
			l.Width = vg.Points(1.5)
			if i == 1 {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			}
			p.Add(l, pts)
			p.Legend.Add(s.name, l, pts)
		}
		if best >= 0 {
			for _, e := range epochs {
				if e.Epoch == best {
					s, err := plotter.NewScatter(plotter.XYs{{X: float64(best + 1), Y: held(e)}})
					if err != nil {
						return nil, err
					}
					s.GlyphStyle.Shape = draw.RingGlyph{}
					s.GlyphStyle.Radius = vg.Points(6)
					s.GlyphStyle.Color = Palette[3]
					p.Add(s)
					p.Legend.Add("selected epoch", s)
				}
			}
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		p.Legend.TextStyle.Font.Size = vg.Points(8)
		return p, nil
	}
	loss, err := panel("loss", func(e TrainEpoch) float64 { return e.TrainLoss }, func(e TrainEpoch) float64 { return e.HeldLoss })
	if err != nil {
		return nil, err
	}
	acc, err := panel("accuracy", func(e TrainEpoch) float64 { return e.TrainAccuracy }, func(e TrainEpoch) float64 { return e.HeldAccuracy })
	if err != nil {
		return nil, err
	}
	acc.Legend.Top, acc.Legend.Left = false, false
	img := vgimg.New(11*vg.Inch, 4*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	grid := [][]*plot.Plot{{loss, acc}}
	canvases := plot.Align(grid, tiles, dc)
	loss.Draw(canvases[0][0])
	acc.Draw(canvases[0][1])
	return encode(img)
}
