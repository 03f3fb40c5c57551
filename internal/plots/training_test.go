package plots

import (
	"testing"

	"gonum.org/v1/plot/plotter"
)

func TestTraining(t *testing.T) {
	var eps []TrainEpoch
	for e := range 8 {
		f := float64(e)
		eps = append(eps, TrainEpoch{Epoch: e, Warmup: e < 2, TrainLoss: 2 - 0.2*f, HeldLoss: 2.1 - 0.18*f,
			TrainAccuracy: 0.3 + 0.07*f, HeldAccuracy: 0.28 + 0.065*f})
	}
	b, err := Training("net", eps, 6)
	checkPNG(t, b, err, "training.png")
	if _, err := Training("net", nil, -1); err == nil {
		t.Fatal("no epochs: expected an error")
	}
}

func TestPareto(t *testing.T) {
	groups := []Group{
		{Name: "searched", Points: []Point{{Label: "T=200", LatencyUS: 190, Accuracy: 0.90}, {Label: "T=300", LatencyUS: 310, Accuracy: 0.92, Lo: 0.915, Hi: 0.926}}},
		{Name: "random", Points: []Point{{Label: "r0", LatencyUS: 250, Accuracy: 0.88}, {Label: "r1", LatencyUS: 350, Accuracy: 0.89}, {Label: "r2", LatencyUS: 400, Accuracy: 0.85}}},
		{Name: "uniform", Points: []Point{{Label: "k3e3", LatencyUS: 150, Accuracy: 0.87}, {Label: "k7e6", LatencyUS: 500, Accuracy: 0.915}}},
	}
	b, err := Pareto("fmnist on amd64", groups, 300)
	checkPNG(t, b, err, "pareto.png")
	if _, err := Pareto("x", nil, 0); err == nil {
		t.Fatal("no points: expected an error")
	}
	f := paretoFront(plotterXYs(groups[1].Points, groups[2].Points))
	if len(f) != 4 || f[0].X != 150 || f[1].X != 250 || f[2].X != 350 || f[3].X != 500 {
		t.Errorf("front %v, want every point but r2 (dominated by r1)", f)
	}
}

func plotterXYs(ps ...[]Point) plotter.XYs {
	var out plotter.XYs
	for _, p := range ps {
		for _, q := range p {
			out = append(out, plotter.XY{X: q.LatencyUS, Y: q.Accuracy})
		}
	}
	return out
}

func TestAlphaLogOdds(t *testing.T) {
	h := AlphaHistory{Candidates: []string{"k3e3", "k5e6", "zero"}, Layers: []string{"s1.l0", "s1.l1", "s2.l0"}}
	for s := 0; s < 10; s++ {
		h.Steps = append(h.Steps, float64(100+10*s))
	}
	for l := 0; l < 3; l++ {
		var recs [][]float64
		for s := 0; s < 10; s++ {
			a := 1.0/3 + 1e-4*float64(s*l) // movements far below what a p plot shows
			recs = append(recs, []float64{a, (1 - a) / 2, (1 - a) / 2})
		}
		h.Probs = append(h.Probs, recs)
	}
	b, err := AlphaLogOdds(h, 100, "")
	checkPNG(t, b, err, "alpha-logodds.png")
	if _, err := AlphaLogOdds(AlphaHistory{}, 0, ""); err == nil {
		t.Fatal("no layers: expected an error")
	}
}
