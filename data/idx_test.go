package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// idxBytes returns an IDX unsigned-byte file with the given magic, dims and payload.
func idxBytes(magic uint32, dims []uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, payload...)
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fashionFixture holds the contents of a small valid Fashion-MNIST split:
// 4 images of 3x2 pixels with labels 9, 0, 3, 9.
func fashionFixture() (images, labels []byte) {
	pix := make([]byte, 4*3*2)
	for i := range pix {
		pix[i] = byte(10 * i)
	}
	return idxBytes(idxImagesMagic, []uint32{4, 3, 2}, pix), idxBytes(idxLabelsMagic, []uint32{4}, []byte{9, 0, 3, 9})
}

func TestLoadFashionMNISTRawAndGzip(t *testing.T) {
	img, lab := fashionFixture()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), gz(t, img))
	writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"), lab) // raw
	writeFile(t, filepath.Join(dir, "t10k-images-idx3-ubyte"), img)
	writeFile(t, filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), gz(t, lab))
	for _, split := range []string{"train", "test"} {
		d, err := LoadFashionMNIST(dir, split)
		if err != nil {
			t.Fatalf("%s: %v", split, err)
		}
		if d.Len() != 4 || d.C != 1 || d.H != 3 || d.W != 2 || d.Name != "fashion-mnist/"+split {
			t.Errorf("%s: got %q len %d shape %dx%dx%d", split, d.Name, d.Len(), d.C, d.H, d.W)
		}
		if !slices.Equal(d.Pixels, img[16:]) || !slices.Equal(d.Labels, []uint8{9, 0, 3, 9}) {
			t.Errorf("%s: pixels or labels differ from the file", split)
		}
		if !slices.Equal(d.Classes, FashionMNISTClasses) || d.Classes[9] != "Ankle boot" {
			t.Errorf("%s: classes %v", split, d.Classes)
		}
	}
	if _, err := LoadFashionMNIST(dir, "valid"); err == nil || !strings.Contains(err.Error(), `expected "train" or "test", got "valid"`) {
		t.Errorf("bad split: got %v", err)
	}
	empty := t.TempDir()
	_, err := LoadFashionMNIST(empty, "train")
	if err == nil || !strings.Contains(err.Error(), "expected train-images-idx3-ubyte.gz or train-images-idx3-ubyte, found neither") {
		t.Errorf("missing files: got %v", err)
	}
}

func TestLoadFashionMNISTCorrupt(t *testing.T) {
	img, lab := fashionFixture()
	tooManyLabels := idxBytes(idxLabelsMagic, []uint32{5}, []byte{1, 2, 3, 4, 5})
	badLabel := slices.Clone(lab)
	badLabel[8+2] = 10
	badMagic := slices.Clone(img)
	badMagic[3] = 0x02
	zimg := gz(t, img)
	for _, tc := range []struct {
		name           string
		images, labels []byte
		gzImages       bool
		wantFile       string
		want           []string
	}{
		{"bad image magic", badMagic, lab, false, "train-images",
			[]string{"byte 0: IDX magic: expected 0x00000803 (unsigned bytes, 3 dimensions)", "got 0x00000802"}},
		{"labels file given as images", lab, lab, false, "train-images",
			[]string{"byte 0: IDX magic", "got 0x00000801"}},
		{"short header", img[:10], lab, false, "train-images",
			[]string{"byte 10: IDX header (short read): expected 16 header bytes, got 10 bytes"}},
		{"truncated pixels", img[:len(img)-5], lab, false, "train-images",
			[]string{"byte 35: pixel data (short read): expected 24 bytes (4 images of 3x2), got 19 bytes"}},
		{"trailing pixels", append(slices.Clone(img), 1, 2), lab, false, "train-images",
			[]string{"byte 40: pixel data (trailing bytes): expected 24 bytes", "got 26 bytes"}},
		{"count mismatch", img, tooManyLabels, false, "train-labels",
			[]string{"byte 4: label count: expected 4 (the image count in", "got 5"}},
		{"truncated labels", img, lab[:10], false, "train-labels",
			[]string{"byte 10: label data (short read): expected 4 bytes, got 2 bytes"}},
		{"label out of range", img, badLabel, false, "train-labels",
			[]string{"byte 10: label of image 2: expected 0..9, got 10"}},
		{"bad gzip header", []byte("this is not gzip data at all"), lab, true, "train-images",
			[]string{"byte 0: gzip header: expected magic 0x1f 0x8b", "got 0x74 0x68"}},
		{"truncated gzip", zimg[:len(zimg)-12], lab, true, "train-images",
			[]string{"gzip data (offset in decompressed content): expected an intact gzip stream", "unexpected EOF"}},
		{"gzip checksum", append(slices.Clone(zimg[:len(zimg)-8]), 0, 0, 0, 0, 40, 0, 0, 0), lab, true, "train-images",
			[]string{"byte 40: gzip data", "checksum", "after 40 decompressed bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			iname := "train-images-idx3-ubyte"
			if tc.gzImages {
				iname += ".gz"
			}
			writeFile(t, filepath.Join(dir, iname), tc.images)
			writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"), tc.labels)
			d, err := LoadFashionMNIST(dir, "train")
			if err == nil {
				t.Fatalf("loaded %d images, want an error", d.Len())
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			if !strings.Contains(fe.File, filepath.Join(dir, tc.wantFile)) {
				t.Errorf("error names file %q, want %s", fe.File, tc.wantFile)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestWriteIDXRoundTrip(t *testing.T) {
	d := synth(13, 1, 5, 7, 4, nil)
	dir := t.TempDir()
	for _, ext := range []string{"", ".gz"} {
		ip, lp := filepath.Join(dir, "i"+ext), filepath.Join(dir, "l"+ext)
		if err := WriteIDX(d, ip, lp); err != nil {
			t.Fatal(err)
		}
		got, err := LoadIDX(ip, lp, d.Classes)
		if err != nil {
			t.Fatal(err)
		}
		if got.Len() != 13 || got.H != 5 || got.W != 7 || !slices.Equal(got.Pixels, d.Pixels) || !slices.Equal(got.Labels, d.Labels) {
			t.Errorf("round trip %q changed the data", ext)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dir, "i.gz"))
	if err := WriteIDX(d, filepath.Join(dir, "again.gz"), filepath.Join(dir, "l2.gz")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "again.gz"))
	if !bytes.Equal(a, b) {
		t.Error("WriteIDX output is not deterministic")
	}
	rgb := synth(2, 3, 2, 2, 2, nil)
	if err := WriteIDX(rgb, filepath.Join(dir, "x"), filepath.Join(dir, "y")); err == nil || !strings.Contains(err.Error(), "channels: expected 1, got 3") {
		t.Errorf("WriteIDX of RGB data: got %v", err)
	}
}

// TestCorruptInputsNeverPanic feeds every truncation and every single-byte
// change of small valid files to the loaders; each must load or return an
// error, never panic.
func TestCorruptInputsNeverPanic(t *testing.T) {
	img, lab := fashionFixture()
	zimg, zlab := gz(t, img), gz(t, lab)
	check := func(iname string, ib []byte, lname string, lb []byte) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("parsing %d/%d bytes of %s/%s panicked: %v", len(ib), len(lb), iname, lname, r)
			}
		}()
		var err error
		if strings.HasSuffix(iname, ".gz") {
			if ib, err = gunzip(iname, ib); err != nil {
				return
			}
			if lb, err = gunzip(lname, lb); err != nil {
				return
			}
		}
		parseIDX(iname, ib, lname, lb, FashionMNISTClasses)
	}
	for _, pair := range [][2][]byte{{img, lab}, {zimg, zlab}} {
		iname, lname := "i", "l"
		if &pair[0][0] == &zimg[0] {
			iname, lname = "i.gz", "l.gz"
		}
		for k := range len(pair[0]) + 1 {
			check(iname, pair[0][:k], lname, pair[1])
			mut := slices.Clone(pair[0])
			if k < len(mut) {
				mut[k] ^= 0xff
				check(iname, mut, lname, pair[1])
			}
		}
		for k := range len(pair[1]) + 1 {
			check(iname, pair[0], lname, pair[1][:k])
		}
	}
	huge := idxBytes(idxImagesMagic, []uint32{0xffffffff, 0xffffffff, 0xffffffff}, nil)
	hugeLab := idxBytes(idxLabelsMagic, []uint32{0xffffffff}, nil)
	if _, err := parseIDX("huge", huge, "l", hugeLab, FashionMNISTClasses); err == nil || !strings.Contains(err.Error(), "pixel count below 2^64") {
		t.Errorf("overflowing dimensions: got %v", err)
	}
	rec := cifarRecords(0, 1, 2)
	for k := range len(rec) + 1 {
		d := &Dataset{C: 3, H: 32, W: 32, Classes: CIFAR10Classes}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("CIFAR record truncated to %d bytes panicked: %v", k, r)
				}
			}()
			err := appendCIFAR(d, "c", rec[:k])
			if (err == nil) != (k == 3073 || k == 2*3073) {
				t.Fatalf("CIFAR file of %d bytes: got error %v", k, err)
			}
		}()
	}
}
