package space

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBuiltinsValidate(t *testing.T) {
	for _, n := range Names() {
		s, err := Builtin(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if _, err := Builtin("cifar"); err == nil || !strings.Contains(err.Error(), "fmnist") {
		t.Errorf("unknown space: error %v should list the built-in names", err)
	}
}

func TestFMNISTPlan(t *testing.T) {
	p, err := FMNIST().Plan()
	if err != nil {
		t.Fatal(err)
	}
	if p.Stem.Out != (Shape{28, 28, 16}) || p.First.Out != (Shape{28, 28, 16}) {
		t.Fatalf("stem %v first %v", p.Stem.Out, p.First.Out)
	}
	type row struct {
		in, out  Shape
		stride   int
		residual bool
		k        int
	}
	want := []row{
		{Shape{28, 28, 16}, Shape{14, 14, 24}, 2, false, 6},
		{Shape{14, 14, 24}, Shape{14, 14, 24}, 1, true, 7},
		{Shape{14, 14, 24}, Shape{14, 14, 24}, 1, true, 7},
		{Shape{14, 14, 24}, Shape{7, 7, 40}, 2, false, 6},
		{Shape{7, 7, 40}, Shape{7, 7, 40}, 1, true, 7},
		{Shape{7, 7, 40}, Shape{7, 7, 40}, 1, true, 7},
		{Shape{7, 7, 40}, Shape{7, 7, 80}, 1, false, 6},
		{Shape{7, 7, 80}, Shape{7, 7, 80}, 1, true, 7},
		{Shape{7, 7, 80}, Shape{7, 7, 80}, 1, true, 7},
		{Shape{7, 7, 80}, Shape{4, 4, 96}, 2, false, 6},
		{Shape{4, 4, 96}, Shape{4, 4, 96}, 1, true, 7},
		{Shape{4, 4, 96}, Shape{4, 4, 96}, 1, true, 7},
	}
	if len(p.Layers) != len(want) {
		t.Fatalf("%d layers, want %d", len(p.Layers), len(want))
	}
	for i, w := range want {
		l := p.Layers[i]
		if l.In != w.in || l.Out != w.out || l.Stride != w.stride || l.Residual != w.residual || len(l.Candidates) != w.k {
			t.Errorf("layer %d: %v -> %v s%d residual %v, %d candidates; want %v -> %v s%d residual %v, %d",
				i, l.In, l.Out, l.Stride, l.Residual, len(l.Candidates), w.in, w.out, w.stride, w.residual, w.k)
		}
		if l.Index != i || l.Stage != i/3+1 || l.Pos != i%3 {
			t.Errorf("layer %d: index %d stage %d pos %d", i, l.Index, l.Stage, l.Pos)
		}
	}
	if p.Head.In != (Shape{4, 4, 96}) || p.Head.Out != (Shape{4, 4, 256}) || p.Classes != 10 {
		t.Errorf("head %v -> %v, classes %d", p.Head.In, p.Head.Out, p.Classes)
	}
}

func TestImageNetMobilePlan(t *testing.T) {
	p, err := ImageNetMobile().Plan()
	if err != nil {
		t.Fatal(err)
	}
	seven, six := 0, 0
	for _, l := range p.Layers {
		switch len(l.Candidates) {
		case 7:
			seven++
		case 6:
			six++
		}
	}
	if len(p.Layers) != 21 || seven != 15 || six != 6 {
		t.Fatalf("%d layers, %d seven-way, %d six-way; want 21, 15, 6", len(p.Layers), seven, six)
	}
	if got := p.NumChoices(); math.Abs(got/2.2e17-1) > 0.05 {
		t.Errorf("%g architectures, want about 2.2e17", got)
	}
	sizes := []int{}
	for _, l := range p.Layers {
		if l.Pos == 0 {
			sizes = append(sizes, l.Out.H)
		}
	}
	if want := []int{56, 28, 14, 14, 7, 7}; !slices.Equal(sizes, want) {
		t.Errorf("stage output sizes %v, want %v", sizes, want)
	}
	if p.Stem.Out != (Shape{112, 112, 32}) || p.Head.Out != (Shape{7, 7, 1280}) {
		t.Errorf("stem %v head %v", p.Stem.Out, p.Head.Out)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	s := ImageNetMobile()
	b, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "space.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := got.JSON()
	if string(b) != string(b2) {
		t.Fatalf("round trip changed the space:\n%s\n%s", b, b2)
	}
}

func TestParseErrors(t *testing.T) {
	good, _ := FMNIST().JSON()
	cases := []struct {
		from, to, want string
	}{
		{`"classes": 10`, `"classes": 1`, "classes: expected 2..65536, got 1"},
		{`"kernel": 3,`, `"kernel": 4,`, "stem.kernel: expected an odd kernel in 1..11, got 4"},
		{`"layers": 3`, `"layers": 0`, "stages[0].layers: expected 1..64, got 0"},
		{`"k3e3"`, `"k4e3"`, "candidates[0]"},
		{`"k3e6"`, `"k3e3"`, `"k3e3" appears twice`},
		{`"height": 28`, `"height": "28"`, "field input.height: expected int"},
		{`"name": "fmnist"`, `"name": "fmnist", "bogus": 1`, `unknown field "bogus"`},
	}
	for _, c := range cases {
		src := strings.Replace(string(good), c.from, c.to, 1)
		if src == string(good) {
			t.Fatalf("edit %q not applied", c.from)
		}
		_, err := Parse([]byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("edit %s -> %s: error %v, want it to contain %q", c.from, c.to, err, c.want)
		}
	}
}

func TestParseCandidates(t *testing.T) {
	cs, err := ParseCandidates("k3e3, k5e6,zero")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(CandidateNames(cs), ","); got != "k3e3,k5e6,zero" {
		t.Fatalf("got %s", got)
	}
	if cs[1].Kernel != 5 || cs[1].Expand != 6 || !cs[2].Zero {
		t.Fatalf("parsed %+v", cs)
	}
	for in, want := range map[string]string{
		"":           "empty string",
		"zero":       "at least one MBConv",
		"k3":         "missing e",
		"k2e3":       "kernel must be odd",
		"k3e0":       "expansion must be in 1..8",
		"kxe3":       "kernel is not an integer",
		"k3e3,k3e3":  "appears twice",
		"conv3":      "missing leading k",
		"k13e3":      "kernel must be odd in 1..11",
		"k3e3,,k5e3": "candidates[1]",
	} {
		_, err := ParseCandidates(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to contain %q", in, err, want)
		}
	}
}
