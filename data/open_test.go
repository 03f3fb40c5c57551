package data

import (
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	fdir := t.TempDir()
	img, lab := fashionFixture()
	writeFile(t, filepath.Join(fdir, "t10k-images-idx3-ubyte"), img)
	writeFile(t, filepath.Join(fdir, "t10k-labels-idx1-ubyte"), lab)
	cdir := t.TempDir()
	writeCIFAR(t, cdir)
	folder := t.TempDir()
	writeFile(t, filepath.Join(folder, "a", "1.png"), encodePNG(t, solid(3, 3, color.RGBA{1, 2, 3, 255})))
	writeFile(t, filepath.Join(folder, "b", "1.png"), encodePNG(t, solid(3, 3, color.RGBA{1, 2, 3, 255})))
	splits := t.TempDir()
	writeFile(t, filepath.Join(splits, "train", "a", "1.png"), encodePNG(t, solid(3, 3, color.RGBA{})))
	writeFile(t, filepath.Join(splits, "train", "a", "2.png"), encodePNG(t, solid(3, 3, color.RGBA{})))
	writeFile(t, filepath.Join(splits, "test", "a", "1.png"), encodePNG(t, solid(3, 3, color.RGBA{})))

	for _, tc := range []struct {
		spec, split string
		c, h, w     int
		wantName    string
		wantLen     int
	}{
		{"fashion-mnist-subset", "test", 0, 0, 0, "fashion-mnist-subset/test", 500},
		{"fashion-mnist-subset", "train", 1, 28, 28, "fashion-mnist-subset/train", 2000},
		{"fashion-mnist:" + fdir, "test", 0, 0, 0, "fashion-mnist/test", 4},
		{"cifar10:" + cdir, "train", 3, 32, 32, "cifar10/train", 10},
		{"folder:" + folder, "train", 1, 8, 8, "folder:" + folder, 2},
		{"folder:" + splits, "train", 3, 4, 4, "folder:" + filepath.Join(splits, "train"), 2},
		{"folder:" + splits, "test", 3, 4, 4, "folder:" + filepath.Join(splits, "test"), 1},
	} {
		d, err := Open(tc.spec, tc.split, tc.c, tc.h, tc.w)
		if err != nil {
			t.Errorf("Open(%q, %q): %v", tc.spec, tc.split, err)
			continue
		}
		if d.Name != tc.wantName || d.Len() != tc.wantLen {
			t.Errorf("Open(%q, %q): got %q with %d images, want %q with %d", tc.spec, tc.split, d.Name, d.Len(), tc.wantName, tc.wantLen)
		}
		if tc.c != 0 && (d.C != tc.c || d.H != tc.h || d.W != tc.w) {
			t.Errorf("Open(%q): shape %dx%dx%d, want %dx%dx%d", tc.spec, d.C, d.H, d.W, tc.c, tc.h, tc.w)
		}
	}

	for _, tc := range []struct {
		spec, split string
		c, h, w     int
		want        string
	}{
		{"mnist", "train", 0, 0, 0, `expected "fashion-mnist", "fashion-mnist-subset"`},
		{"cifar10", "train", 0, 0, 0, `expected "fashion-mnist", "fashion-mnist-subset"`},
		{"fashion-mnist-subset:x", "train", 0, 0, 0, "expected"},
		{"folder:", "train", 1, 2, 2, `expected a directory after "folder:"`},
		{"folder:" + folder, "train", 0, 0, 0, "expected channels, height and width > 0"},
		{"fashion-mnist-subset", "train", 3, 28, 28, "channels: requested 3, but the data set has 1"},
		{"fashion-mnist-subset", "valid", 0, 0, 0, `got "valid"`},
		{"cifar10:" + fdir, "test", 0, 0, 0, "test_batch.bin"},
	} {
		if _, err := Open(tc.spec, tc.split, tc.c, tc.h, tc.w); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q, %q, %d, %d, %d): got %v, want an error containing %q", tc.spec, tc.split, tc.c, tc.h, tc.w, err, tc.want)
		}
	}
}

func TestOpenSystemFashionMNIST(t *testing.T) {
	d, err := Open("fashion-mnist", "test", 0, 0, 0)
	if _, statErr := os.Stat(DefaultFashionMNISTDir); statErr != nil {
		// Without the Debian package the error must say how to get the data.
		for _, w := range []string{DefaultFashionMNISTDir, "apt-get install dataset-fashion-mnist", `"fashion-mnist-subset"`} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("got %v, want an error containing %q", err, w)
			}
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 10000 || d.Name != "fashion-mnist/test" {
		t.Errorf("got %q with %d images, want fashion-mnist/test with 10000", d.Name, d.Len())
	}
}
