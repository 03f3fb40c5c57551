package runtime

import "testing"

// TestDepthwiseFollowsColumnSplit checks the locality rule of Depthwise on
// a small map: after a GEMM that split its columns (channels) between the
// threads, a depthwise layer under the serial threshold still splits by
// channel vectors, so that each thread reads the channels it wrote; after
// a GEMM run on one thread, or split by rows, it runs on the caller.
func TestDepthwiseFollowsColumnSplit(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	p.serial = 1 << 20 // the AVX-512 threshold, whatever this CPU runs
	pointwise := func(cin, cout int) *Pointwise {
		s := ConvSpec{Cin: cin, Cout: cout, KH: 1, KW: 1}
		w := make([]float32, cin*cout)
		for i := range w {
			w[i] = float32(i%7) / 7
		}
		pk, err := PackPointwise(s, w)
		if err != nil {
			t.Fatal(err)
		}
		op, err := NewPointwise(s, pk, nil)
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	ds := ConvSpec{Cin: 960, Cout: 960, KH: 3, KW: 3, Groups: 960, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	pk, err := PackDepthwise(ds, make([]float32, 960*9))
	if err != nil {
		t.Fatal(err)
	}
	dw, err := NewDepthwise(ds, pk, nil)
	if err != nil {
		t.Fatal(err)
	}
	mid := NewTensor(7, 7, 960, 1)
	out := NewTensor(7, 7, 960, 0)
	for _, c := range []struct {
		name     string
		producer func() error
		split    bool
	}{
		// 7x7x160 → 960: 7.5 M multiply-adds, B much wider than A: columns
		{"after a column split", func() error { return pointwise(160, 960).Run(p, mid, NewTensor(7, 7, 160, 0), nil) }, true},
		// 7x7x8 → 960: under the threshold, one thread
		{"after a GEMM on one thread", func() error { return pointwise(8, 960).Run(p, mid, NewTensor(7, 7, 8, 0), nil) }, false},
		// 56x56x32 → 24: many row tiles, split by rows
		{"after a row split", func() error {
			return pointwise(32, 24).Run(p, NewTensor(56, 56, 24, 0), NewTensor(56, 56, 32, 0), nil)
		}, false},
	} {
		if err := c.producer(); err != nil {
			t.Fatal(err)
		}
		if err := dw.Run(p, out, mid, nil); err != nil {
			t.Fatal(err)
		}
		if got := dw.nblk > 1; got != c.split {
			t.Errorf("%s: depthwise split into %d channel blocks, want split %v", c.name, dw.nblk, c.split)
		}
	}
}
