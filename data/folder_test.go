package data

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func removeFile(path string) error { return os.Remove(path) }

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// solid returns a w x h RGBA image of one colour.
func solid(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func TestLoadImageFolder(t *testing.T) {
	dir := t.TempDir()
	// 2x2 image with distinct RGB pixels, loaded at its own size: exact copy.
	quad := image.NewRGBA(image.Rect(0, 0, 2, 2))
	quad.SetRGBA(0, 0, color.RGBA{10, 20, 30, 255})
	quad.SetRGBA(1, 0, color.RGBA{40, 50, 60, 255})
	quad.SetRGBA(0, 1, color.RGBA{70, 80, 90, 255})
	quad.SetRGBA(1, 1, color.RGBA{100, 110, 120, 255})
	writeFile(t, filepath.Join(dir, "zebra", "b.png"), encodePNG(t, quad))
	writeFile(t, filepath.Join(dir, "zebra", "a.PNG"), encodePNG(t, solid(2, 2, color.RGBA{255, 0, 0, 255})))
	writeFile(t, filepath.Join(dir, "cat", "x.jpg"), encodeJPEG(t, solid(2, 2, color.RGBA{0, 0, 200, 255})))
	// Skipped on purpose: other extensions, dotfiles, nested folders, top-level files.
	writeFile(t, filepath.Join(dir, "cat", "notes.txt"), []byte("not an image"))
	writeFile(t, filepath.Join(dir, "cat", ".hidden.png"), []byte("junk"))
	writeFile(t, filepath.Join(dir, "cat", "deeper", "y.png"), encodePNG(t, quad))
	writeFile(t, filepath.Join(dir, "README"), []byte("top-level file"))
	writeFile(t, filepath.Join(dir, ".git", "x.png"), encodePNG(t, quad))

	d, err := LoadImageFolder(dir, 3, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Classes, []string{"cat", "zebra"}) {
		t.Fatalf("classes %v, want [cat zebra]", d.Classes)
	}
	if d.Len() != 3 || !slices.Equal(d.Labels, []uint8{0, 1, 1}) {
		t.Fatalf("got %d images labelled %v, want 3 labelled [0 1 1]", d.Len(), d.Labels)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	// JPEG is lossy: allow a small error on the blue square.
	for k, p := range d.Image(0) {
		want := 0 // red and green planes
		if k >= 8 {
			want = 200 // blue plane
		}
		if abs(int(p)-want) > 3 {
			t.Errorf("cat/x.jpg byte %d: got %d, want about %d", k, p, want)
		}
	}
	if want := []uint8{255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0}; !slices.Equal(d.Image(1), want) {
		t.Errorf("zebra/a.PNG: got %v, want %v", d.Image(1), want)
	}
	if want := []uint8{10, 40, 70, 100, 20, 50, 80, 110, 30, 60, 90, 120}; !slices.Equal(d.Image(2), want) {
		t.Errorf("zebra/b.png (CHW): got %v, want %v", d.Image(2), want)
	}

	grey, err := LoadImageFolder(dir, 1, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	// GrayModel: (19595 R + 38470 G + 7471 B + 1<<15) >> 24 on 16-bit values.
	wantY := func(r, g, b uint32) uint8 {
		return uint8((19595*(r*257) + 38470*(g*257) + 7471*(b*257) + 1<<15) >> 24)
	}
	if want := []uint8{wantY(10, 20, 30), wantY(40, 50, 60), wantY(70, 80, 90), wantY(100, 110, 120)}; !slices.Equal(grey.Image(2), want) {
		t.Errorf("greyscale zebra/b.png: got %v, want %v", grey.Image(2), want)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestLoadImageFolderResize(t *testing.T) {
	dir := t.TempDir()
	// Horizontal ramp 0, 60, 120, 180 on 4 columns, 2 rows.
	ramp := image.NewGray(image.Rect(0, 0, 4, 2))
	for y := range 2 {
		for x := range 4 {
			ramp.SetGray(x, y, color.Gray{uint8(60 * x)})
		}
	}
	writeFile(t, filepath.Join(dir, "r", "ramp.png"), encodePNG(t, ramp))

	// Downscale 4 -> 2 columns: centres at source x 0.5 and 2.5 -> 30 and 150.
	d, err := LoadImageFolder(dir, 1, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{30, 150}; !slices.Equal(d.Pixels, want) {
		t.Errorf("4x2 -> 2x1: got %v, want %v", d.Pixels, want)
	}
	// Upscale 4 -> 8 columns: source x = (o+0.5)/2 - 0.5, clamped to [0,3].
	d, err = LoadImageFolder(dir, 1, 2, 8)
	if err != nil {
		t.Fatal(err)
	}
	row := []uint8{0, 15, 45, 75, 105, 135, 165, 180}
	if want := append(slices.Clone(row), row...); !slices.Equal(d.Pixels, want) {
		t.Errorf("4x2 -> 8x2: got %v, want %v", d.Pixels, want)
	}
	// Grey source loaded as RGB repeats the plane.
	d, err = LoadImageFolder(dir, 3, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{30, 150, 30, 150, 30, 150}; !slices.Equal(d.Pixels, want) {
		t.Errorf("grey as RGB: got %v, want %v", d.Pixels, want)
	}
	// A larger, odd-sized JPEG resized to a small square.
	writeFile(t, filepath.Join(dir, "s", "big.jpeg"), encodeJPEG(t, solid(37, 23, color.RGBA{90, 90, 90, 255})))
	d, err = LoadImageFolder(dir, 1, 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 || d.Labels[1] != 1 {
		t.Fatalf("got %d images, labels %v", d.Len(), d.Labels)
	}
	for _, p := range d.Image(1) {
		if abs(int(p)-90) > 2 {
			t.Fatalf("resized flat JPEG: pixel %d, want about 90", p)
		}
	}
}

func TestLoadImageFolderErrors(t *testing.T) {
	good := func(t *testing.T) string {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a", "1.png"), encodePNG(t, solid(3, 3, color.RGBA{1, 2, 3, 255})))
		return dir
	}
	t.Run("not an image", func(t *testing.T) {
		dir := good(t)
		bad := filepath.Join(dir, "a", "2.png")
		writeFile(t, bad, []byte("plain text pretending to be a PNG"))
		_, err := LoadImageFolder(dir, 3, 4, 4)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.File != bad || !strings.Contains(err.Error(), "expected a PNG or JPEG image, got 33 bytes that do not decode") {
			t.Errorf("got %v, want a *FormatError naming %s", err, bad)
		}
	})
	t.Run("truncated png", func(t *testing.T) {
		dir := good(t)
		b := encodePNG(t, solid(8, 8, color.RGBA{9, 9, 9, 255}))
		bad := filepath.Join(dir, "a", "3.png")
		writeFile(t, bad, b[:len(b)/2])
		if _, err := LoadImageFolder(dir, 1, 4, 4); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("got %v, want an error naming %s", err, bad)
		}
	})
	t.Run("empty class", func(t *testing.T) {
		dir := good(t)
		writeFile(t, filepath.Join(dir, "b", "readme.txt"), []byte("x"))
		if _, err := LoadImageFolder(dir, 1, 4, 4); err == nil || !strings.Contains(err.Error(), `class "b": expected at least one .png/.jpg/.jpeg file, found none`) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no classes", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "x.png"), encodePNG(t, solid(1, 1, color.RGBA{})))
		if _, err := LoadImageFolder(dir, 1, 4, 4); err == nil || !strings.Contains(err.Error(), "found no sub-folders") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("missing dir", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope")
		if _, err := LoadImageFolder(missing, 1, 4, 4); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("bad shape", func(t *testing.T) {
		dir := good(t)
		for _, s := range [][3]int{{2, 4, 4}, {0, 4, 4}, {1, 0, 4}, {3, 4, -1}, {1, MaxImageSide + 1, 4}} {
			if _, err := LoadImageFolder(dir, s[0], s[1], s[2]); err == nil {
				t.Errorf("shape %v accepted", s)
			}
		}
	})
}
