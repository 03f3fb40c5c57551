package space

import "testing"

func TestLatencyKeys(t *testing.T) {
	p, err := FMNIST().Plan()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want, typ string }{
		{p.StemKey(), "Conv-input:28x28x1-output:28x28x16", StemType},
		{p.FirstKey(), "expanded_conv-input:28x28x16-output:28x28x16-expand:1-kernel:3-stride:1-idskip:0", MBConvType},
		{p.HeadKey(), "Conv_1-input:4x4x96-output:4x4x256", HeadType},
		{p.LogitsKey(), "Logits-input:4x4x256-output:10", LogitsType},
		// 7x7x40 -> 7x7x40, residual
		{p.Layers[4].Key(Candidate{Kernel: 5, Expand: 6}), "expanded_conv-input:7x7x40-output:7x7x40-expand:6-kernel:5-stride:1-idskip:1", MBConvType},
		{p.Layers[3].Key(Candidate{Kernel: 3, Expand: 3}), "expanded_conv-input:14x14x24-output:7x7x40-expand:3-kernel:3-stride:2-idskip:0", MBConvType},
	} {
		if c.got != c.want {
			t.Errorf("key %s, want %s", c.got, c.want)
		}
		if got := KeyType(c.got); got != c.typ {
			t.Errorf("KeyType(%s) = %q, want %q", c.got, got, c.typ)
		}
	}
	if got := p.Layers[4].Key(Candidate{Zero: true}); got != "" {
		t.Errorf("Zero key %q, want none", got)
	}
	if got := p.FixedKeys(); len(got) != 4 || got[0] != p.StemKey() || got[3] != p.LogitsKey() {
		t.Errorf("FixedKeys = %q", got)
	}
}
