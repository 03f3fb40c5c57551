package shell

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
)

// The input decoders of generated programs must turn any bytes into either
// samples of the network's shape or one input error, never a panic, a hang
// or an allocation out of proportion to the input. The seeds below (valid
// files of every format and a few corrupt ones) run with every `go test`;
// files in testdata/fuzz/<FuzzName>/ are inputs that once failed, kept as
// regressions. A campaign runs each target on its own, for example:
//
//	go test -run='^$' -fuzz='^FuzzInputImage$' -fuzztime=10m ./codegen/shell/
//
// (see the README's Development section for the full list).

// fuzzSpecs are the networks every input is decoded for: RGB with
// normalisation and greyscale without.
func fuzzSpecs() []*network {
	rgb := testProgram().nets[0]
	grey := &network{name: "grey", inC: 1, inH: 5, inW: 3}
	return []*network{rgb, grey}
}

// checkLoad decodes data as the file path for every spec and checks the
// result: samples of the spec's shape with finite values, or an input error
// of one line.
func checkLoad(t *testing.T, path string, data []byte, index int, many bool) {
	t.Helper()
	for _, spec := range fuzzSpecs() {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		xs, err := loadSamples(path, data, index, spec, many, io.Discard)
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, allocBound(len(data)); got > limit {
			t.Fatalf("%s: decoding %d bytes allocated %d bytes, more than %d", spec.name, len(data), got, limit)
		}
		if err != nil {
			var ie *inputError
			if !errors.As(err, &ie) {
				t.Fatalf("%s: error %T is not an input error: %v", spec.name, err, err)
			}
			if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("%s: error is not one non-empty line: %q", spec.name, msg)
			}
			if xs != nil {
				t.Fatalf("%s: samples and an error", spec.name)
			}
			continue
		}
		if len(xs) == 0 || (!many && len(xs) != 1) {
			t.Fatalf("%s: %d samples (many=%v)", spec.name, len(xs), many)
		}
		per := spec.inC * spec.inH * spec.inW
		for s, x := range xs {
			if len(x) != per {
				t.Fatalf("%s: sample %d has %d values, want %d", spec.name, s, len(x), per)
			}
			for i, v := range x {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s: sample %d value %d is %v", spec.name, s, i, v)
				}
			}
		}
	}
}

// allocBound is the most a decode of n bytes may allocate: a fixed 16 MiB
// plus 150,000 bytes per input byte, which covers a 1-bit PNG compressed as
// far as deflate goes (8256 pixels a byte) decoded to float32 RGB and grey.
func allocBound(n int) uint64 { return 16<<20 + 150_000*uint64(n) }

func encodedPNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodedJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
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

func gzipped(b []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	return z.Bytes()
}

func FuzzInputImage(f *testing.F) {
	gradient := image.NewRGBA(image.Rect(0, 0, 7, 5))
	for y := 0; y < 5; y++ {
		for x := 0; x < 7; x++ {
			gradient.Set(x, y, color.RGBA{R: uint8(30 * x), G: uint8(50 * y), B: 77, A: uint8(255 - 20*x)})
		}
	}
	grey := image.NewGray(image.Rect(0, 0, 4, 4))
	grey16 := image.NewGray16(image.Rect(0, 0, 3, 2))
	pal := image.NewPaletted(image.Rect(0, 0, 6, 6), color.Palette{color.Black, color.White})
	pal.SetColorIndex(2, 3, 1)
	rgbPNG := encodedPNG(f, gradient)
	rgbJPEG := encodedJPEG(f, gradient)
	for _, seed := range [][]byte{
		rgbPNG,
		encodedPNG(f, grey),
		encodedPNG(f, grey16),
		encodedPNG(f, pal),
		rgbJPEG,
		encodedJPEG(f, grey),
		encodedJPEG(f, solidImage(40, 24, color.RGBA{R: 200, G: 10, B: 90, A: 255})),
		rgbPNG[:len(rgbPNG)/2],
		rgbJPEG[:len(rgbJPEG)/2],
		pngWithSize(rgbPNG, 100000, 100000),
		pngWithSize(rgbPNG, 8000, 8000),
		[]byte("\x89PNG\r\n\x1a\n"),
		{0xff, 0xd8, 0xff},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLoad(t, "in.png", data, 0, false)
	})
}

func FuzzInputIDX(f *testing.F) {
	three := idx(3, 4, 4, func(i int) byte { return byte(i * 5) })
	two := append([]byte{0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3}, 1, 2, 3, 4, 5, 6)
	four := append([]byte{0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 4}, bytes.Repeat([]byte{9, 99, 199, 255}, 4)...)
	twoCh := append([]byte{0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2}, 1, 2)
	huge := []byte{0, 0, 8, 3, 0x80, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28}
	for _, seed := range []struct {
		data  []byte
		index int
	}{
		{three, 0}, {three, 2}, {three, 3}, {three, -1},
		{two, 0}, {four, 0}, {twoCh, 0},
		{gzipped(three), 1},
		{gzipped(three)[:20], 0},
		{three[:len(three)-1], 0},
		{huge, 0},
		{gzipped(huge), 0},
		{[]byte{0, 0, 8, 4}, 0},
	} {
		f.Add(seed.data, seed.index)
	}
	f.Fuzz(func(t *testing.T, data []byte, index int) {
		checkLoad(t, "images-idx3-ubyte", data, index, false)
	})
}

func FuzzInputNPY(f *testing.F) {
	rgb := f32bytes(make([]float32, 48))
	grey := f32bytes([]float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
	for _, seed := range []struct {
		data []byte
		many bool
	}{
		{npy("(1, 3, 4, 4)", "<f4", rgb), false},
		{npy("(3, 4, 4)", "<f4", rgb), false},
		{npy("(2, 3, 4, 4)", "<f4", append(rgb, rgb...)), true},
		{npy("(1, 1, 5, 3)", "<f4", grey), false},
		{npy("(2, 1, 5, 3)", "<f4", append(grey, grey...)), true},
		{npy("(1, 3, 4, 4)", "<f8", rgb), false},
		{npy("(1, 3, 4, 4)", "<f4", rgb[:40]), false},
		{npy("(0, 3, 4, 4)", "<f4", nil), true},
		{npy("(99999999999999999999, 3, 4, 4)", "<f4", rgb), true},
		{gzipped(npy("(3, 4, 4)", "<f4", rgb)), false},
		{[]byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f{}"), false},
		{[]byte("\x93NUMPY\x01\x00"), false},
	} {
		f.Add(seed.data, seed.many)
	}
	f.Fuzz(func(t *testing.T, data []byte, many bool) {
		checkLoad(t, "x.npy", data, 0, many)
	})
}

func FuzzInputBin(f *testing.F) {
	rgb := f32bytes(make([]float32, 48))
	grey := f32bytes(make([]float32, 15))
	nan := bytes.Clone(rgb)
	binary.LittleEndian.PutUint32(nan[8:], math.Float32bits(float32(math.Inf(1))))
	for _, seed := range []struct {
		data []byte
		many bool
	}{
		{rgb, false}, {append(rgb, rgb...), true}, {append(rgb, rgb...), false},
		{grey, false}, {grey, true}, {nan, false}, {rgb[:7], false}, {nil, true},
		{gzipped(rgb), false},
	} {
		f.Add(seed.data, seed.many)
	}
	f.Fuzz(func(t *testing.T, data []byte, many bool) {
		checkLoad(t, "x.bin", data, 0, many)
	})
}

// TestImageHeaderBoundsAllocation checks that an image whose header claims
// far more pixels than the file holds is rejected before the decoder
// allocates them (an 81-byte PNG claiming 8000x8000 pixels allocated 244 MiB,
// a 597-byte JPEG claiming 8000x8000 91 MiB).
func TestImageHeaderBoundsAllocation(t *testing.T) {
	small := solidImage(7, 5, color.White)
	claimJPEG := encodedJPEG(t, small)
	for i := 0; i+8 < len(claimJPEG); i++ {
		if claimJPEG[i] == 0xff && claimJPEG[i+1] == 0xc0 { // SOF0: height, width at +5
			binary.BigEndian.PutUint16(claimJPEG[i+5:], 8000)
			binary.BigEndian.PutUint16(claimJPEG[i+7:], 8000)
		}
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"png", pngWithSize(encodedPNG(t, small), 8000, 8000)},
		{"jpeg", claimJPEG},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := loadSamples("x."+c.name, c.data, 0, fuzzSpecs()[0], false, io.Discard)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "header claims 8000x8000 pixels, more than its") {
			t.Errorf("%s: error %v, want the header's claim rejected", c.name, err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("%s: rejecting a %d-byte file allocated %d bytes", c.name, len(c.data), got)
		}
	}
	// A genuine image that compresses well is still accepted.
	big := encodedPNG(t, image.NewGray(image.Rect(0, 0, 2000, 2000)))
	if _, err := loadSamples("x.png", big, 0, fuzzSpecs()[0], false, io.Discard); err != nil {
		t.Errorf("2000x2000 black PNG of %d bytes: %v", len(big), err)
	}
}
