package data

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// synth returns a data set of n images of shape c x h x w whose labels cycle
// through nclass classes (or follow labels when given) and whose pixels are
// pseudo-random but fixed.
func synth(n, c, h, w, nclass int, labels []uint8) *Dataset {
	r := rand.New(rand.NewPCG(7, 11))
	d := &Dataset{Name: "synth", C: c, H: h, W: w, Pixels: make([]uint8, n*c*h*w), Labels: make([]uint8, n)}
	for i := range d.Pixels {
		d.Pixels[i] = uint8(r.IntN(256))
	}
	for i := range d.Labels {
		if labels != nil {
			d.Labels[i] = labels[i]
		} else {
			d.Labels[i] = uint8(i % nclass)
		}
	}
	for k := range nclass {
		d.Classes = append(d.Classes, string(rune('a'+k)))
	}
	return d
}

func TestSubset(t *testing.T) {
	d := synth(5, 2, 3, 4, 3, nil)
	s := d.Subset([]int{4, 0, 4})
	if s.Len() != 3 || s.C != 2 || s.H != 3 || s.W != 4 || len(s.Pixels) != 3*24 {
		t.Fatalf("subset shape: got len %d, %dx%dx%d, %d pixels", s.Len(), s.C, s.H, s.W, len(s.Pixels))
	}
	for j, i := range []int{4, 0, 4} {
		if !slices.Equal(s.Image(j), d.Image(i)) || s.Labels[j] != d.Labels[i] {
			t.Errorf("subset image %d differs from source image %d", j, i)
		}
	}
	s.Pixels[0]++
	if s.Pixels[0] == d.Image(4)[0] {
		t.Error("Subset shares pixel memory with its source")
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(*Dataset)
	}{
		{"shape", "expected all > 0", func(d *Dataset) { d.H = 0 }},
		{"pixels", "pixel count: expected 48", func(d *Dataset) { d.Pixels = d.Pixels[:47] }},
		{"classes", "class count: expected 1..256, got 0", func(d *Dataset) { d.Classes = nil }},
		{"label", "label of image 1: expected 0..2, got 3", func(d *Dataset) { d.Labels[1] = 3 }},
	} {
		d := synth(4, 1, 3, 4, 3, nil)
		tc.edit(d)
		err := d.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestHoldOut(t *testing.T) {
	d := synth(1000, 1, 2, 2, 10, nil)
	for i := range d.Labels { // tag each image with its index so parts can be traced
		d.Pixels[4*i], d.Pixels[4*i+1] = uint8(i>>8), uint8(i)
	}
	id := func(s *Dataset, j int) int { return int(s.Image(j)[0])<<8 | int(s.Image(j)[1]) }

	train, held, err := HoldOut(d, 95, 42)
	if err != nil {
		t.Fatal(err)
	}
	if held.Len() != 95 || train.Len() != 905 {
		t.Fatalf("sizes: got held %d train %d, want 95 and 905", held.Len(), train.Len())
	}
	// 95 over 10 classes: 10 each for classes 0..4, 9 each for 5..9.
	want := []int{10, 10, 10, 10, 10, 9, 9, 9, 9, 9}
	if got := held.ClassCounts(); !slices.Equal(got, want) {
		t.Errorf("held class counts: got %v, want %v", got, want)
	}
	seen := make([]int, d.Len())
	for _, part := range []*Dataset{train, held} {
		prev := -1
		for j := range part.Len() {
			i := id(part, j)
			if i <= prev {
				t.Fatalf("part does not keep the source order: %d after %d", i, prev)
			}
			prev = i
			seen[i]++
			if part.Labels[j] != d.Labels[i] {
				t.Fatalf("image %d: label %d, source label %d", i, part.Labels[j], d.Labels[i])
			}
		}
	}
	for i, k := range seen {
		if k != 1 {
			t.Fatalf("image %d appears %d times across train and held", i, k)
		}
	}

	_, again, _ := HoldOut(d, 95, 42)
	if !slices.Equal(again.Pixels, held.Pixels) {
		t.Error("same seed gave a different split")
	}
	_, other, _ := HoldOut(d, 95, 43)
	if slices.Equal(other.Pixels, held.Pixels) {
		t.Error("seeds 42 and 43 gave the same split")
	}
}

// TestHoldOutPinned pins the selection so that a change of algorithm, which
// would silently change the committed Fashion-MNIST subset, is noticed.
func TestHoldOutPinned(t *testing.T) {
	d := synth(40, 1, 1, 1, 2, nil)
	for i := range d.Pixels {
		d.Pixels[i] = uint8(i)
	}
	_, held, err := HoldOut(d, 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{0, 5, 6, 7, 37, 38}
	if !slices.Equal(held.Pixels, want) {
		t.Errorf("HoldOut(40 images, 6, seed 1) picked %v, want %v", held.Pixels, want)
	}
}

func TestHoldOutUnbalanced(t *testing.T) {
	// Class 0 has 2 images, class 1 has 50, class 2 has 8.
	var labels []uint8
	for i := range 60 {
		switch {
		case i < 2:
			labels = append(labels, 0)
		case i < 52:
			labels = append(labels, 1)
		default:
			labels = append(labels, 2)
		}
	}
	d := synth(60, 1, 1, 1, 3, labels)
	_, held, err := HoldOut(d, 30, 5)
	if err != nil {
		t.Fatal(err)
	}
	// Even share is 10; class 0 can give only 2, the other 8 go to classes 1 and 2,
	// class 2 is capped at 8, so class 1 gives 20.
	if got, want := held.ClassCounts(), []int{2, 20, 8}; !slices.Equal(got, want) {
		t.Errorf("held class counts: got %v, want %v", got, want)
	}
	train, held, err := HoldOut(d, 0, 5)
	if err != nil || held.Len() != 0 || train.Len() != 60 {
		t.Errorf("HoldOut 0: got train %d held %d err %v", train.Len(), held.Len(), err)
	}
	train, held, err = HoldOut(d, 60, 5)
	if err != nil || held.Len() != 60 || train.Len() != 0 {
		t.Errorf("HoldOut all: got train %d held %d err %v", train.Len(), held.Len(), err)
	}
	for _, n := range []int{-1, 61} {
		if _, _, err := HoldOut(d, n, 5); err == nil || !strings.Contains(err.Error(), "expected 0..60") {
			t.Errorf("HoldOut %d: got error %v, want a range error", n, err)
		}
	}
	bad := synth(4, 1, 1, 1, 2, nil)
	bad.Labels[3] = 9
	if _, _, err := HoldOut(bad, 1, 1); err == nil {
		t.Error("HoldOut accepted a data set with a label out of range")
	}
}

func TestNormalizationCheck(t *testing.T) {
	good := []Normalization{{}, {Mean: []float32{0.5}, Std: []float32{0.2}}, {Mean: []float32{1, 2, 3}, Std: []float32{1, 1, 1}}}
	for _, n := range good {
		if err := n.Check(3); err != nil {
			t.Errorf("Check(%v): %v", n, err)
		}
	}
	for _, tc := range []struct {
		n    Normalization
		want string
	}{
		{Normalization{Mean: []float32{0}}, "expected as many std values"},
		{Normalization{Mean: []float32{0, 0}, Std: []float32{1, 1}}, "expected 0, 1 or 3 values"},
		{Normalization{Mean: []float32{0}, Std: []float32{0}}, "std[0]: expected a finite value > 0, got 0"},
		{Normalization{Mean: []float32{float32(math.NaN())}, Std: []float32{1}}, "mean[0]"},
	} {
		if err := tc.n.Check(3); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%v): got %v, want %q", tc.n, err, tc.want)
		}
	}
}

func TestBatchNormalization(t *testing.T) {
	d := synth(6, 3, 4, 5, 4, nil)
	norm := Normalization{Mean: []float32{0.1, 0.5, 0.9}, Std: []float32{0.5, 2, 0.25}}
	idx := []int{5, 2, 2}
	out, labels := d.Batch(idx, norm, nil, nil, nil)
	if len(out) != 3*60 {
		t.Fatalf("batch length: got %d, want %d", len(out), 3*60)
	}
	for j, i := range idx {
		if labels[j] != int(d.Labels[i]) {
			t.Errorf("label %d: got %d, want %d", j, labels[j], d.Labels[i])
		}
		for k, p := range d.Image(i) {
			c := k / 20
			want := (float32(p)/255 - norm.Mean[c]) / norm.Std[c]
			if got := out[j*60+k]; math.Abs(float64(got-want)) > 1e-6 {
				t.Fatalf("image %d value %d: got %v, want %v", j, k, got, want)
			}
		}
	}
	// No normalization: plain [0,1] scaling. A long enough dst is reused.
	dst := make([]float32, 500)
	out2, _ := d.Batch([]int{1}, Normalization{}, nil, nil, dst)
	if &out2[0] != &dst[0] || len(out2) != 60 {
		t.Error("Batch did not reuse a long enough dst")
	}
	for k, p := range d.Image(1) {
		if out2[k] != float32(p)/255 {
			t.Fatalf("value %d: got %v, want %v", k, out2[k], float32(p)/255)
		}
	}
	// A single mean/std applies to every channel.
	out3, _ := d.Batch([]int{0}, Normalization{Mean: []float32{0.5}, Std: []float32{0.5}}, nil, nil, nil)
	for k, p := range d.Image(0) {
		if want := (float32(p)/255 - 0.5) / 0.5; math.Abs(float64(out3[k]-want)) > 1e-6 {
			t.Fatalf("broadcast value %d: got %v, want %v", k, out3[k], want)
		}
	}
}

// refAugment builds the augmented image the slow way: pad with zeros, cut
// the window at (oy, ox) in padded coordinates, then mirror if flip.
func refAugment(img []uint8, c, h, w, pad, oy, ox int, flip bool) []uint8 {
	ph, pw := h+2*pad, w+2*pad
	padded := make([]uint8, c*ph*pw)
	for ch := range c {
		for y := range h {
			for x := range w {
				padded[ch*ph*pw+(y+pad)*pw+x+pad] = img[ch*h*w+y*w+x]
			}
		}
	}
	out := make([]uint8, c*h*w)
	for ch := range c {
		for y := range h {
			for x := range w {
				out[ch*h*w+y*w+x] = padded[ch*ph*pw+(y+oy)*pw+x+ox]
			}
		}
		if flip {
			for y := range h {
				slices.Reverse(out[ch*h*w+y*w : ch*h*w+(y+1)*w])
			}
		}
	}
	return out
}

func TestBatchAugment(t *testing.T) {
	d := synth(3, 2, 5, 6, 3, nil)
	aug := &Augment{Pad: 2, Flip: true}
	rng := rand.New(rand.NewPCG(3, 4))
	replay := rand.New(rand.NewPCG(3, 4))
	offsets := map[[3]int]bool{}
	for range 300 {
		idx := []int{0, 1, 2}
		out, _ := d.Batch(idx, Normalization{}, aug, rng, nil)
		for j, i := range idx {
			oy := replay.IntN(2*aug.Pad + 1)
			ox := replay.IntN(2*aug.Pad + 1)
			flip := replay.IntN(2) == 1
			fl := 0
			if flip {
				fl = 1
			}
			offsets[[3]int{oy, ox, fl}] = true
			want := refAugment(d.Image(i), d.C, d.H, d.W, aug.Pad, oy, ox, flip)
			for k, p := range want {
				if out[j*60+k] != float32(p)/255 {
					t.Fatalf("image %d offset (%d,%d) flip %v: value %d: got %v, want %v", i, oy, ox, flip, k, out[j*60+k], float32(p)/255)
				}
			}
		}
	}
	if len(offsets) != 5*5*2 {
		t.Errorf("saw %d distinct (row, column, flip) draws, want all 50", len(offsets))
	}
	// Padding pixels are normalized like pixel value 0.
	norm := Normalization{Mean: []float32{0.5}, Std: []float32{0.25}}
	one := &Dataset{Name: "one", C: 1, H: 1, W: 1, Pixels: []uint8{255}, Labels: []uint8{0}, Classes: []string{"x"}}
	vals := map[float32]bool{}
	for range 100 {
		out, _ := one.Batch([]int{0}, norm, &Augment{Pad: 1}, rng, nil)
		vals[out[0]] = true
	}
	if len(vals) != 2 || !vals[(0-0.5)/0.25] || !vals[(1-0.5)/0.25] {
		t.Errorf("1x1 image with pad 1: got values %v, want exactly {-2, 2}", vals)
	}
}

func TestBatchPanicsOnMisuse(t *testing.T) {
	d := synth(2, 1, 2, 2, 2, nil)
	for _, tc := range []struct {
		name, want string
		call       func()
	}{
		{"index", "index 2 out of range", func() { d.Batch([]int{2}, Normalization{}, nil, nil, nil) }},
		{"norm", "std[0]", func() { d.Batch([]int{0}, Normalization{Mean: []float32{0}, Std: []float32{-1}}, nil, nil, nil) }},
		{"rng", "non-nil *rand.Rand", func() { d.Batch([]int{0}, Normalization{}, &Augment{Flip: true}, nil, nil) }},
	} {
		func() {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tc.want) {
					t.Errorf("%s: recovered %v, want a panic containing %q", tc.name, r, tc.want)
				}
			}()
			tc.call()
		}()
	}
}

func TestStats(t *testing.T) {
	d := synth(7, 3, 4, 4, 2, nil)
	norm := d.Stats()
	for c := range 3 {
		var vals []float64
		for i := range d.Len() {
			for _, p := range d.Image(i)[c*16 : (c+1)*16] {
				vals = append(vals, float64(p)/255)
			}
		}
		var sum float64
		for _, v := range vals {
			sum += v
		}
		mean := sum / float64(len(vals))
		var ss float64
		for _, v := range vals {
			ss += (v - mean) * (v - mean)
		}
		std := math.Sqrt(ss / float64(len(vals)))
		if math.Abs(float64(norm.Mean[c])-mean) > 1e-6 || math.Abs(float64(norm.Std[c])-std) > 1e-6 {
			t.Errorf("channel %d: got mean %v std %v, want %v %v", c, norm.Mean[c], norm.Std[c], mean, std)
		}
	}
	flat := &Dataset{Name: "flat", C: 1, H: 2, W: 2, Pixels: []uint8{9, 9, 9, 9}, Labels: []uint8{0}, Classes: []string{"x"}}
	if n := flat.Stats(); n.Std[0] != 1 || math.Abs(float64(n.Mean[0])-9.0/255) > 1e-7 {
		t.Errorf("constant image: got %v, want mean 9/255 and std 1", n)
	}
	empty := &Dataset{Name: "empty", C: 2, H: 2, W: 2, Classes: []string{"x"}}
	if n := empty.Stats(); n.Check(2) != nil {
		t.Errorf("empty data set stats %v fail Check", n)
	}
}
