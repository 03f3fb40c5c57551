package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"runtime"
	"strings"
	"testing"
)

// The loaders must turn any file content into a valid data set or one
// *FormatError, never a panic, a hang or an allocation out of proportion
// to the input. The seeds below (valid files and a few corrupt ones) run
// with every `go test`; files in testdata/fuzz/<FuzzName>/ are inputs that
// once failed, kept as regressions. A campaign runs each target on its
// own, for example:
//
//	go test -run='^$' -fuzz='^FuzzIDX$' -fuzztime=10m ./data/
//
// (see the README's Development section for the full list).

// allocBound is the most a load of n input bytes may allocate: a fixed
// 16 MiB plus 150,000 bytes per input byte, which covers a 1-bit PNG
// compressed as far as deflate goes (8256 pixels a byte) decoded to float32
// RGB, and gzip's at most 1032-fold expansion.
func allocBound(n int) uint64 { return 16<<20 + 150_000*uint64(n) }

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// checkFormatError fails unless err is a *FormatError naming file with a
// one-line message.
func checkFormatError(t *testing.T, err error, files ...string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %T is not a *FormatError: %v", err, err)
	}
	if !strings.Contains(strings.Join(files, "\x00"), fe.File) || fe.File == "" {
		t.Fatalf("error names file %q, want one of %q", fe.File, files)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// FuzzIDX fuzzes an images and a labels IDX file, raw or gzipped (as
// LoadIDX reads them when the names end in .gz).
func FuzzIDX(f *testing.F) {
	img, lab := fashionFixture()
	huge := idxBytes(idxImagesMagic, []uint32{1 << 31, 28, 28}, nil)
	hugeLab := idxBytes(idxLabelsMagic, []uint32{1 << 31}, nil)
	for _, seed := range []struct {
		img, lab []byte
		gz       bool
	}{
		{img, lab, false},
		{gzipBytes(img), gzipBytes(lab), true},
		{img[:len(img)-1], lab, false},
		{img, lab[:9], false},
		{huge, hugeLab, false},
		{gzipBytes(huge), gzipBytes(hugeLab), true},
		{idxBytes(idxImagesMagic, []uint32{0xffffffff, 0xffffffff, 0xffffffff}, nil), hugeLab, false},
		{idxBytes(idxImagesMagic, []uint32{1, 0, 3}, nil), idxBytes(idxLabelsMagic, []uint32{1}, []byte{0}), false},
		{idxBytes(idxImagesMagic, []uint32{2, 2, 2}, make([]byte, 8)), idxBytes(idxLabelsMagic, []uint32{2}, []byte{3, 200}), false},
		{gzipBytes(img)[:30], gzipBytes(lab), true},
		{[]byte{0x1f, 0x8b}, nil, true},
	} {
		f.Add(seed.img, seed.lab, seed.gz)
	}
	f.Fuzz(func(t *testing.T, img, lab []byte, gz bool) {
		iname, lname := "images-idx3-ubyte", "labels-idx1-ubyte"
		if gz {
			iname, lname = iname+".gz", lname+".gz"
		}
		var d *Dataset
		var err error
		got := allocated(func() {
			ib, lb := img, lab
			if gz {
				if ib, err = gunzip(iname, ib); err != nil {
					return
				}
				if lb, err = gunzip(lname, lb); err != nil {
					return
				}
			}
			d, err = parseIDX(iname, ib, lname, lb, FashionMNISTClasses)
		})
		if limit := allocBound(len(img) + len(lab)); got > limit {
			t.Fatalf("loading %d+%d bytes allocated %d bytes, more than %d", len(img), len(lab), got, limit)
		}
		if err != nil {
			checkFormatError(t, err, iname, lname)
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("loaded an invalid data set: %v", err)
		}
	})
}

// FuzzCIFAR fuzzes a CIFAR-10 binary batch file.
func FuzzCIFAR(f *testing.F) {
	for _, seed := range [][]byte{
		cifarRecords(0, 1),
		cifarRecords(7, 9, 0, 4),
		cifarRecords(0, 10),
		cifarRecords(0, 3)[:3072],
		append(cifarRecords(0, 3), 1),
		nil,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &Dataset{Name: "cifar10/test", C: cifarC, H: cifarH, W: cifarW, Classes: CIFAR10Classes}
		var err error
		got := allocated(func() { err = appendCIFAR(d, "test_batch.bin", b) })
		if limit := allocBound(len(b)); got > limit {
			t.Fatalf("loading %d bytes allocated %d bytes, more than %d", len(b), got, limit)
		}
		if err != nil {
			checkFormatError(t, err, "test_batch.bin")
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("loaded an invalid data set: %v", err)
		}
		if d.Len() != len(b)/cifarRecord {
			t.Fatalf("%d records from %d bytes", d.Len(), len(b))
		}
	})
}

// pngWithSize returns a copy of a PNG whose header claims w x h pixels.
func pngWithSize(data []byte, w, h uint32) []byte {
	data = bytes.Clone(data)
	// IHDR data starts at byte 16; the CRC of "IHDR" and its 13 data
	// bytes is at byte 29.
	binary.BigEndian.PutUint32(data[16:], w)
	binary.BigEndian.PutUint32(data[20:], h)
	binary.BigEndian.PutUint32(data[29:], crc32.ChecksumIEEE(data[12:29]))
	return data
}

// jpegWithSize returns a copy of a baseline JPEG whose header claims w x h
// pixels.
func jpegWithSize(data []byte, w, h uint16) []byte {
	data = bytes.Clone(data)
	for i := 0; i+8 < len(data); i++ {
		if data[i] == 0xff && data[i+1] == 0xc0 { // SOF0: height, then width, at +5
			binary.BigEndian.PutUint16(data[i+5:], h)
			binary.BigEndian.PutUint16(data[i+7:], w)
			break
		}
	}
	return data
}

// FuzzFolderImage fuzzes one image file of an image folder, decoded and
// converted to greyscale and RGB as LoadImageFolder does.
func FuzzFolderImage(f *testing.F) {
	grad := image.NewRGBA(image.Rect(0, 0, 9, 4))
	for y := range 4 {
		for x := range 9 {
			grad.Set(x, y, color.RGBA{uint8(25 * x), uint8(60 * y), 200, uint8(255 - 10*x)})
		}
	}
	pal := image.NewPaletted(image.Rect(0, 0, 5, 5), color.Palette{color.Black, color.White})
	pngB, jpgB := encodePNG(f, grad), encodeJPEG(f, grad)
	for _, seed := range [][]byte{
		pngB,
		jpgB,
		encodePNG(f, image.NewGray16(image.Rect(0, 0, 3, 3))),
		encodePNG(f, pal),
		encodeJPEG(f, image.NewGray(image.Rect(0, 0, 16, 8))),
		pngB[:len(pngB)/2],
		jpgB[:len(jpgB)/2],
		pngWithSize(pngB, 100000, 100000),
		pngWithSize(pngB, 8000, 8000),
		jpegWithSize(jpgB, 8000, 8000),
		[]byte("plain text pretending to be a PNG"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const name = "classes/a/1.png"
		var err error
		var out [2][]uint8
		got := allocated(func() {
			var img image.Image
			if img, err = decodeImageData(name, b); err != nil {
				return
			}
			out[0], out[1] = toCHW(img, 1, 6, 5), toCHW(img, 3, 6, 5)
		})
		if limit := allocBound(len(b)); got > limit {
			t.Fatalf("loading %d bytes allocated %d bytes, more than %d", len(b), got, limit)
		}
		if err != nil {
			checkFormatError(t, err, name)
			return
		}
		if len(out[0]) != 30 || len(out[1]) != 90 {
			t.Fatalf("converted to %d and %d bytes, want 30 and 90", len(out[0]), len(out[1]))
		}
	})
}

// TestImageHeaderBoundsAllocation checks that an image whose header claims
// far more pixels than the file holds is rejected before the decoder
// allocates them: before the check, an 81-byte PNG claiming 8000x8000 pixels
// allocated 244 MiB, and one claiming 100000x100000 would ask for 37 GiB.
func TestImageHeaderBoundsAllocation(t *testing.T) {
	small := solid(7, 5, color.RGBA{9, 9, 9, 255})
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"png", pngWithSize(encodePNG(t, small), 8000, 8000), "got 8000x8000: the file is truncated or corrupt"},
		{"jpeg", jpegWithSize(encodeJPEG(t, small), 8000, 8000), "got 8000x8000: the file is truncated or corrupt"},
		{"png", pngWithSize(encodePNG(t, small), 100000, 100000), "expected at most 67108864 pixels, got 100000x100000"},
	} {
		var err error
		got := allocated(func() { _, err = decodeImageData("x."+c.name, c.data) })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if got > 1<<20 {
			t.Errorf("%s: rejecting a %d-byte file allocated %d bytes", c.name, len(c.data), got)
		}
	}
	big := encodePNG(t, image.NewGray(image.Rect(0, 0, 2000, 2000)))
	if _, err := decodeImageData("big.png", big); err != nil {
		t.Errorf("2000x2000 black PNG of %d bytes: %v", len(big), err)
	}
}
