package data

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestEmbeddedFashionMNIST(t *testing.T) {
	for _, tc := range []struct {
		split    string
		n, per   int
		wantName string
	}{{"train", EmbeddedTrainLen, 200, "fashion-mnist-subset/train"}, {"test", EmbeddedTestLen, 50, "fashion-mnist-subset/test"}} {
		d, err := EmbeddedFashionMNIST(tc.split)
		if err != nil {
			t.Fatalf("%s: %v", tc.split, err)
		}
		if d.Len() != tc.n || d.C != 1 || d.H != 28 || d.W != 28 || d.Name != tc.wantName {
			t.Errorf("%s: got %q with %d images of %dx%dx%d, want %d of 1x28x28", tc.split, d.Name, d.Len(), d.C, d.H, d.W, tc.n)
		}
		for c, k := range d.ClassCounts() {
			if k != tc.per {
				t.Errorf("%s: class %d (%s): %d images, want %d", tc.split, c, d.Classes[c], k, tc.per)
			}
		}
		if err := d.Validate(); err != nil {
			t.Error(err)
		}
		// Real clothing images: mostly dark background, a good share of bright pixels.
		s := d.Stats()
		if s.Mean[0] < 0.2 || s.Mean[0] > 0.4 || s.Std[0] < 0.25 || s.Std[0] > 0.45 {
			t.Errorf("%s: pixel mean %.3f std %.3f, want those of Fashion-MNIST (about 0.29 and 0.35)", tc.split, s.Mean[0], s.Std[0])
		}
	}
	if _, err := EmbeddedFashionMNIST("val"); err == nil {
		t.Error("EmbeddedFashionMNIST accepted split \"val\"")
	}
}

var (
	fullOnce sync.Once
	fullSets map[string]*Dataset
	fullErr  error
)

// systemFashionMNIST loads both splits from DefaultFashionMNISTDir once, or
// skips the test when the Debian package is not installed.
func systemFashionMNIST(t *testing.T) map[string]*Dataset {
	t.Helper()
	if _, err := os.Stat(DefaultFashionMNISTDir); err != nil {
		t.Skipf("full Fashion-MNIST not installed (%v); apt-get install dataset-fashion-mnist", err)
	}
	fullOnce.Do(func() {
		fullSets = map[string]*Dataset{}
		for _, split := range []string{"train", "test"} {
			var d *Dataset
			d, fullErr = LoadFashionMNIST(DefaultFashionMNISTDir, split)
			if fullErr != nil {
				return
			}
			fullSets[split] = d
		}
	})
	if fullErr != nil {
		t.Fatal(fullErr)
	}
	return fullSets
}

func TestSystemFashionMNIST(t *testing.T) {
	sets := systemFashionMNIST(t)
	for split, want := range map[string]int{"train": 60000, "test": 10000} {
		d := sets[split]
		if d.Len() != want || d.H != 28 || d.W != 28 {
			t.Errorf("%s: %d images of %dx%d, want %d of 28x28", split, d.Len(), d.H, d.W, want)
		}
		for c, k := range d.ClassCounts() {
			if k != want/10 {
				t.Errorf("%s: class %d has %d images, want %d", split, c, k, want/10)
			}
		}
	}
}

// TestEmbeddedSubsetIsCurrent re-derives the committed subset from the full
// set the way fmnist/gen.go does and compares images and labels, so that a
// change to HoldOut or to the generator cannot leave stale files behind.
func TestEmbeddedSubsetIsCurrent(t *testing.T) {
	sets := systemFashionMNIST(t)
	for split, n := range map[string]int{"train": EmbeddedTrainLen, "test": EmbeddedTestLen} {
		_, want, err := HoldOut(sets[split], n, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EmbeddedFashionMNIST(split)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Pixels, want.Pixels) || !slices.Equal(got.Labels, want.Labels) {
			t.Errorf("%s: embedded subset differs from HoldOut(full, %d, 1); run go generate in package data", split, n)
		}
	}
	manifest, err := os.ReadFile("fmnist/MANIFEST")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(manifest), "-train 2000 -test 500 -seed 1. DO NOT EDIT.") {
		t.Errorf("fmnist/MANIFEST does not record the generator command with -train 2000 -test 500 -seed 1:\n%s", manifest)
	}
}

// TestImports enforces the import rule of doc.go: the standard library only.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/pnasml/pnas/data" && p != "github.com/pnasml/pnas/internal/atomicfile" && !strings.HasPrefix(p, "golang.org/x/image/") {
			t.Errorf("package data depends on %s; it may import only the standard library, golang.org/x/image and internal/atomicfile", p)
		}
	}
}
