package plots

import (
	"bytes"
	"image/png"
	"os"
	"testing"

	"gonum.org/v1/plot"

	"github.com/pnasml/pnas/search/space"
)

func checkPNG(t *testing.T, b []byte, err error, name string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", name, err)
	}
	if img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
		t.Fatalf("%s: image too small: %v", name, img.Bounds())
	}
	if dir := os.Getenv("PNAS_PLOTS_OUT"); dir != "" {
		os.WriteFile(dir+"/"+name, b, 0o644)
	}
}

func TestAlpha(t *testing.T) {
	h := AlphaHistory{Candidates: []string{"k3e3", "k5e6", "zero"}, Layers: []string{"s1.l0", "s1.l1", "s2.l0"}}
	for s := 0; s < 10; s++ {
		h.Steps = append(h.Steps, float64(s))
	}
	for l := 0; l < 3; l++ {
		var recs [][]float64
		for s := 0; s < 10; s++ {
			a := 0.33 + 0.05*float64(s)/10*float64(l)
			recs = append(recs, []float64{a, (1 - a) / 2, (1 - a) / 2})
		}
		h.Probs = append(h.Probs, recs)
	}
	b, err := Alpha(h)
	checkPNG(t, b, err, "alpha.png")
	if _, err := Alpha(AlphaHistory{}); err == nil {
		t.Fatal("no error for empty history")
	}
}

func TestArchitecture(t *testing.T) {
	blocks := []ArchBlock{
		{Label: "stem 3x3", Out: space.Shape{H: 28, W: 28, C: 16}},
		{Label: "MB1 3x3", Kernel: 3, Expand: 1, Stride: 1, Out: space.Shape{H: 28, W: 28, C: 16}},
		{Label: "MB6 5x5", Kernel: 5, Expand: 6, Stride: 2, Out: space.Shape{H: 14, W: 14, C: 24}},
		{Label: "zero", Zero: true},
		{Label: "MB3 7x7", Kernel: 7, Expand: 3, Stride: 1, Out: space.Shape{H: 14, W: 14, C: 24}},
		{Label: "head 1x1", Out: space.Shape{H: 4, W: 4, C: 256}},
	}
	b, err := Architecture("fmnist / amd64", blocks)
	checkPNG(t, b, err, "arch.png")
}

func TestLatencyAccuracy(t *testing.T) {
	b, err := LatencyAccuracy("fmnist", []Point{{Label: "a", LatencyUS: 120, Accuracy: 0.9}, {Label: "b", LatencyUS: 80, Accuracy: 0.88}, {Label: "c", LatencyUS: 200, Accuracy: 0.91}})
	checkPNG(t, b, err, "scatter.png")
}

func TestDistinctTicks(t *testing.T) {
	// the case this is for: gonum labels 1.85 and 1.9 both "1.9"
	if labelsDistinct(plot.DefaultTicks{}.Ticks(1.78, 1.905)) {
		t.Log("gonum's own labels are distinct on [1.78, 1.905] now; the relabelling below is not exercised there")
	}
	for _, r := range [][2]float64{{1.78, 1.905}, {1.8899, 1.8951}, {0, 1}, {-0.3, 0.3}} {
		ticks := distinctTicks{}.Ticks(r[0], r[1])
		if !labelsDistinct(ticks) {
			var labels []string
			for _, tk := range ticks {
				labels = append(labels, tk.Label)
			}
			t.Errorf("range %v: tick labels repeat: %q", r, labels)
		}
	}
	// labels gonum already tells apart are kept as they are
	def := plot.DefaultTicks{}.Ticks(0, 1)
	got := distinctTicks{}.Ticks(0, 1)
	for i := range def {
		if def[i].Label != got[i].Label {
			t.Errorf("range [0,1]: label %q became %q", def[i].Label, got[i].Label)
		}
	}
}
