package shell

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rgbIDX writes n 4x4 RGB images (channels last) whose brightest channel
// is bright[i], as an IDX [N,4,4,3] file.
func rgbIDX(bright []int) []byte {
	b := []byte{0, 0, 8, 4}
	for _, d := range []int{len(bright), 4, 4, 3} {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	for _, c := range bright {
		for range 16 {
			for ch := range 3 {
				v := byte(40)
				if ch == c {
					v = 220
				}
				b = append(b, v)
			}
		}
	}
	return b
}

func labelIDX(labels []int) []byte {
	b := []byte{0, 0, 8, 1}
	b = binary.BigEndian.AppendUint32(b, uint32(len(labels)))
	for _, l := range labels {
		b = append(b, byte(l))
	}
	return b
}

func gz(b []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	return z.Bytes()
}

// The test network predicts the brightest channel: 5 of 6 images are
// labelled so, one (class 2) is not.
func TestEvalIDX(t *testing.T) {
	images := writeFile(t, "images-idx4-ubyte.gz", gz(rgbIDX([]int{0, 1, 2, 0, 1, 2})))
	labels := writeFile(t, "labels-idx1-ubyte", labelIDX([]int{0, 1, 2, 0, 1, 1}))
	code, out, errs := runProg(t, "-eval", images, "-labels", labels, "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r evalResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.N != 6 || r.Correct != 5 || r.Accuracy != 5.0/6 {
		t.Fatalf("result %+v, want 5 of 6", r)
	}
	want := []classAccuracy{{0, "red", 2, 2, 1}, {1, "green", 3, 2, 2.0 / 3}, {2, "blue", 1, 1, 1}}
	for c, w := range want {
		if r.PerClass[c] != w {
			t.Errorf("class %d: %+v, want %+v", c, r.PerClass[c], w)
		}
	}
	code, out, _ = runProg(t, "-eval", images, "-labels", labels)
	if code != 0 || !strings.Contains(out, "top-1 accuracy 0.8333 (5/6)") || !strings.Contains(out, "green") {
		t.Errorf("text output (exit %d):\n%s", code, out)
	}
}

func TestEvalFolder(t *testing.T) {
	dir := t.TempDir()
	for c, name := range []string{"a-red", "b-green", "c-blue"} {
		os.Mkdir(filepath.Join(dir, name), 0o755)
		img := image.NewRGBA(image.Rect(0, 0, 4, 4))
		col := color.RGBA{40, 40, 40, 255}
		switch c {
		case 0:
			col.R = 220
		case 1:
			col.G = 220
		case 2:
			col.B = 220
		}
		for y := range 4 {
			for x := range 4 {
				img.Set(x, y, col)
			}
		}
		var b bytes.Buffer
		png.Encode(&b, img)
		for _, f := range []string{"1.png", "2.PNG"} {
			os.WriteFile(filepath.Join(dir, name, f), b.Bytes(), 0o644)
		}
		os.WriteFile(filepath.Join(dir, name, "notes.txt"), []byte("skipped"), 0o644)
	}
	code, out, errs := runProg(t, "-eval", dir, "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r evalResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.N != 6 || r.Correct != 6 || r.PerClass[1].N != 2 {
		t.Fatalf("result %+v, want 6 of 6", r)
	}
}

func TestEvalErrors(t *testing.T) {
	images := writeFile(t, "images", rgbIDX([]int{0, 1}))
	three := writeFile(t, "labels3", labelIDX([]int{0, 1, 2}))
	bad := writeFile(t, "labels-bad", labelIDX([]int{0, 7}))
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-eval", images}, 2, "expected -labels LABELS"},
		{[]string{"-eval", images, "-labels", three}, 2, "holds 3 labels, -eval " + images + " holds 2 images"},
		{[]string{"-eval", images, "-labels", bad}, 2, "label 7 of image 1 is outside the network's 3 classes"},
		{[]string{"-eval", images, "-labels", images}, 2, "expected a one-dimensional IDX label file"},
		{[]string{"-eval", empty}, 2, "expected one sub-folder of images per class"},
		{[]string{"-labels", three, "-input", images}, 2, "-labels needs -eval"},
		{[]string{"-eval", images, "-bench", "3"}, 2, "give it alone"},
	} {
		code, _, errs := runProg(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}
