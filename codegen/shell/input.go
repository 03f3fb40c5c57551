package shell

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers JPEG decoding
	_ "image/png"  // registers PNG decoding
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// inputError is a problem with the user's input: the program reports it on
// one line and exits with status 2.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// pixels is a decoded image: planar C x H x W values in [0, 255].
type pixels struct {
	c, h, w int
	v       []float32
}

// maxInputBytes bounds what is read from an input file (decompressed).
const maxInputBytes = 1 << 30

// sniff names the format of an input file from its first bytes, or from
// its extension for raw float32 files.
func sniff(path string, data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return "jpeg"
	case bytes.HasPrefix(data, []byte("\x93NUMPY")):
		return "npy"
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		return "gzip"
	case len(data) >= 4 && data[0] == 0 && data[1] == 0 && data[2] == 0x08 && data[3] >= 1 && data[3] <= 4:
		return "idx"
	case strings.EqualFold(filepath.Ext(path), ".bin"):
		return "bin"
	}
	return ""
}

// loadSamples reads an input file and returns planar C x H x W samples for
// the network. Images and IDX files give one sample (the index-th image of
// an IDX file), normalised as the network's input spec says; .bin and .npy
// files give their values unchanged: exactly one sample, or, when many is
// set, any positive whole number of samples.
//
// An image whose aspect ratio differs from the network's input is
// stretched to fit; a note on warn says so.
func loadSamples(path string, data []byte, index int, spec *network, many bool, warn io.Writer) ([][]float32, error) {
	format := sniff(path, data)
	if format == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, badInput("%s: gzip: %v", path, err)
		}
		data, err = io.ReadAll(io.LimitReader(zr, maxInputBytes+1))
		if err != nil {
			return nil, badInput("%s: gzip: %v", path, err)
		}
		if len(data) > maxInputBytes {
			return nil, badInput("%s: decompressed data exceeds %d bytes", path, maxInputBytes)
		}
		format = sniff(strings.TrimSuffix(path, filepath.Ext(path)), data)
		if format != "idx" && format != "npy" && format != "bin" {
			return nil, badInput("%s: gzip data is not an IDX, .npy or raw float32 file", path)
		}
	}
	var px *pixels
	var err error
	switch format {
	case "png", "jpeg":
		px, err = decodeImage(data)
	case "idx":
		px, err = decodeIDX(data, index)
	case "npy":
		return decodeNPY(data, spec, many)
	case "bin":
		return decodeBin(data, spec, many)
	default:
		return nil, badInput("%s: unrecognised format: expected PNG, JPEG, IDX (optionally gzipped), .npy, or raw little-endian float32 .bin", path)
	}
	if err != nil {
		return nil, badInput("%s: %v", path, err)
	}
	if px.w*spec.inH != px.h*spec.inW {
		fmt.Fprintf(warn, "note: %s is %dx%d (width x height); the model takes %dx%d, so it is resized with a different aspect ratio (stretched)\n",
			path, px.w, px.h, spec.inW, spec.inH)
	}
	x, err := prepare(px, spec)
	if err != nil {
		return nil, badInput("%s: %v", path, err)
	}
	return [][]float32{x}, nil
}

// maxImagePixels bounds the size of a decoded image.
const maxImagePixels = 1 << 26

// pixelsHeld bounds the pixels an encoded image of n bytes can describe,
// so that a header claiming more is rejected before the decoder allocates
// the image. A PNG pixel takes at least one bit before deflate, which
// expands at most 1032 times; a JPEG spends at least one bit on every 8x8
// block (its DC coefficient). Other formats get no bound beyond
// maxImagePixels. (package data bounds images the same way.)
func pixelsHeld(format string, n int) int {
	switch format {
	case "png":
		return 8 * 1032 * n
	case "jpeg":
		return 64 * 8 * n
	}
	return maxImagePixels
}

func decodeImage(data []byte) (*pixels, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decoding image: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxImagePixels/cfg.Height {
		return nil, fmt.Errorf("%s image is %dx%d pixels, expected at most %d pixels", format, cfg.Width, cfg.Height, maxImagePixels)
	}
	if limit := pixelsHeld(format, len(data)); cfg.Width*cfg.Height > limit {
		return nil, fmt.Errorf("%s image header claims %dx%d pixels, more than its %d bytes can hold (at most %d): the file is truncated or corrupt",
			format, cfg.Width, cfg.Height, len(data), limit)
	}
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decoding image: %v", err)
	}
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("%s image is empty", format)
	}
	px := &pixels{h: h, w: w}
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		px.c = 1
	default:
		px.c = 3
	}
	px.v = make([]float32, px.c*h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			if px.c == 1 {
				px.v[y*w+x] = float32(r) / 257
				continue
			}
			px.v[(0*h+y)*w+x] = float32(r) / 257
			px.v[(1*h+y)*w+x] = float32(g) / 257
			px.v[(2*h+y)*w+x] = float32(bl) / 257
		}
	}
	return px, nil
}

// decodeIDX reads image index of an IDX file of unsigned bytes: [H,W] (one
// image), [N,H,W] (grey images) or [N,H,W,C] (channels last).
func decodeIDX(data []byte, index int) (*pixels, error) {
	nd := int(data[3])
	if len(data) < 4+4*nd {
		return nil, fmt.Errorf("IDX header is truncated: %d dimensions need %d bytes, got %d", nd, 4+4*nd, len(data))
	}
	dims := make([]int, nd)
	total := 1
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(data[4+4*i:]))
		if dims[i] <= 0 || dims[i] > 1<<24 {
			return nil, fmt.Errorf("IDX dimension %d is %d, expected 1..%d", i, dims[i], 1<<24)
		}
		total *= dims[i]
		if total > maxInputBytes {
			return nil, fmt.Errorf("IDX dimensions %v exceed %d bytes", dims[:i+1], maxInputBytes)
		}
	}
	body := data[4+4*nd:]
	if len(body) != total {
		return nil, fmt.Errorf("IDX data is %d bytes, dimensions %v need %d (truncated or trailing data)", len(body), dims, total)
	}
	var n, h, w, c int
	switch nd {
	case 2:
		n, h, w, c = 1, dims[0], dims[1], 1
	case 3:
		n, h, w, c = dims[0], dims[1], dims[2], 1
	case 4:
		n, h, w, c = dims[0], dims[1], dims[2], dims[3]
	default:
		return nil, fmt.Errorf("IDX file has %d dimensions, expected images: [H,W], [N,H,W] or [N,H,W,C]", nd)
	}
	if index < 0 || index >= n {
		return nil, fmt.Errorf("-index %d out of range: the file holds %d images (0..%d)", index, n, n-1)
	}
	img := body[index*h*w*c:][:h*w*c]
	px := &pixels{c: c, h: h, w: w, v: make([]float32, c*h*w)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for ch := 0; ch < c; ch++ {
				px.v[(ch*h+y)*w+x] = float32(img[(y*w+x)*c+ch])
			}
		}
	}
	return px, nil
}

// prepare converts decoded pixels to the network's channel count and size
// and normalises them: v/255, then (v-mean)/std per channel.
func prepare(px *pixels, spec *network) ([]float32, error) {
	c, h, w := spec.inC, spec.inH, spec.inW
	var err error
	if px, err = convertChannels(px, c); err != nil {
		return nil, err
	}
	if px.h != h || px.w != w {
		px = resizeBilinear(px, h, w)
	}
	out := px.v
	hw := h * w
	for ch := 0; ch < c; ch++ {
		for i := ch * hw; i < (ch+1)*hw; i++ {
			v := out[i] / 255
			if len(spec.mean) > 0 {
				v -= spec.mean[ch]
			}
			if len(spec.std) > 0 {
				v /= spec.std[ch]
			}
			out[i] = v
		}
	}
	return out, nil
}

// convertChannels maps grey to RGB by replication and RGB to grey by
// luminance (ITU-R BT.601 weights, as image/color does).
func convertChannels(px *pixels, c int) (*pixels, error) {
	if px.c == c {
		return px, nil
	}
	hw := px.h * px.w
	out := &pixels{c: c, h: px.h, w: px.w, v: make([]float32, c*hw)}
	switch {
	case px.c == 1:
		for ch := 0; ch < c; ch++ {
			copy(out.v[ch*hw:], px.v)
		}
	case px.c >= 3 && c == 1:
		for i := 0; i < hw; i++ {
			out.v[i] = 0.299*px.v[i] + 0.587*px.v[hw+i] + 0.114*px.v[2*hw+i]
		}
	case px.c > 3 && c == 3:
		copy(out.v, px.v[:3*hw])
	default:
		return nil, fmt.Errorf("the image has %d channels, the model expects %d", px.c, c)
	}
	return out, nil
}

// resizeBilinear resamples to h x w with half-pixel centres, clamping at
// the edges.
func resizeBilinear(px *pixels, h, w int) *pixels {
	out := &pixels{c: px.c, h: h, w: w, v: make([]float32, px.c*h*w)}
	sy := float64(px.h) / float64(h)
	sx := float64(px.w) / float64(w)
	coord := func(o int, s float64, n int) (int, int, float32) {
		f := (float64(o)+0.5)*s - 0.5
		f = math.Max(0, math.Min(f, float64(n-1)))
		i0 := int(f)
		i1 := min(i0+1, n-1)
		return i0, i1, float32(f - float64(i0))
	}
	for y := 0; y < h; y++ {
		y0, y1, fy := coord(y, sy, px.h)
		for x := 0; x < w; x++ {
			x0, x1, fx := coord(x, sx, px.w)
			for c := 0; c < px.c; c++ {
				p := px.v[c*px.h*px.w:]
				a := p[y0*px.w+x0]*(1-fx) + p[y0*px.w+x1]*fx
				b := p[y1*px.w+x0]*(1-fx) + p[y1*px.w+x1]*fx
				out.v[(c*h+y)*w+x] = a*(1-fy) + b*fy
			}
		}
	}
	return out
}

// decodeBin reads raw little-endian float32 samples in NCHW order.
func decodeBin(data []byte, spec *network, many bool) ([][]float32, error) {
	per := spec.inC * spec.inH * spec.inW
	if len(data)%4 != 0 {
		return nil, badInput("raw float32 input: %d bytes is not a whole number of float32 values", len(data))
	}
	n := len(data) / 4 / per
	if len(data) == 0 || n*per*4 != len(data) || (!many && n != 1) {
		return nil, badInput("raw float32 input: expected %d bytes (float32 [1,%d,%d,%d]), got %d",
			per*4, spec.inC, spec.inH, spec.inW, len(data))
	}
	return floatsToSamples(data, n, per)
}

func floatsToSamples(data []byte, n, per int) ([][]float32, error) {
	out := make([][]float32, n)
	for s := range out {
		x := make([]float32, per)
		for i := range x {
			v := math.Float32frombits(binary.LittleEndian.Uint32(data[4*(s*per+i):]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, badInput("input value %d of sample %d is %v, expected a finite number", i, s, v)
			}
			x[i] = v
		}
		out[s] = x
	}
	return out, nil
}

// decodeNPY reads a NumPy .npy array of little-endian float32 in C order
// with shape [N,C,H,W] or [C,H,W] (N = 1 unless many is set).
func decodeNPY(data []byte, spec *network, many bool) ([][]float32, error) {
	if len(data) < 10 {
		return nil, badInput(".npy input: header is truncated")
	}
	major := data[6]
	var hlen, start int
	switch major {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(data[8:])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, badInput(".npy input: header is truncated")
		}
		hlen, start = int(binary.LittleEndian.Uint32(data[8:])), 12
	default:
		return nil, badInput(".npy input: format version %d is not supported (expected 1, 2 or 3)", major)
	}
	if hlen > len(data)-start {
		return nil, badInput(".npy input: header of %d bytes is truncated", hlen)
	}
	header := string(data[start : start+hlen])
	body := data[start+hlen:]
	descr, err := npyField(header, "descr")
	if err != nil {
		return nil, err
	}
	if d := strings.Trim(descr, `'"`); d != "<f4" {
		return nil, badInput(".npy input: dtype %s, expected little-endian float32 ('<f4')", shown(d))
	}
	fo, err := npyField(header, "fortran_order")
	if err != nil {
		return nil, err
	}
	if fo != "False" {
		return nil, badInput(".npy input: fortran_order is %s, expected False (C order)", shown(fo))
	}
	sh, err := npyField(header, "shape")
	if err != nil {
		return nil, err
	}
	var shape []int
	for _, f := range strings.Split(strings.Trim(sh, "()"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, badInput(".npy input: bad shape %s", shown(sh))
		}
		shape = append(shape, v)
	}
	want := []int{spec.inC, spec.inH, spec.inW}
	n := 1
	ok := false
	switch len(shape) {
	case 3:
		ok = slices.Equal(shape, want)
	case 4:
		n = shape[0]
		ok = slices.Equal(shape[1:], want) && (n == 1 || (many && n > 0))
	}
	if !ok {
		return nil, badInput(".npy input: shape %v, expected [1 %d %d %d] or [%d %d %d]", shape, spec.inC, spec.inH, spec.inW, spec.inC, spec.inH, spec.inW)
	}
	per := spec.inC * spec.inH * spec.inW
	if len(body) != 4*n*per {
		return nil, badInput(".npy input: data is %d bytes, shape %v needs %d (truncated or trailing data)", len(body), shape, 4*n*per)
	}
	return floatsToSamples(body, n, per)
}

// shown returns a value from an input file for an error message: as it is
// when it is short and printable, else quoted and cut to 40 bytes, so that
// the message stays one line.
func shown(v string) string {
	if len(v) <= 40 && !strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return v
	}
	if len(v) > 40 {
		return strconv.Quote(v[:40]) + "..."
	}
	return strconv.Quote(v)
}

// npyField extracts the value of key from a .npy header dictionary.
func npyField(header, key string) (string, error) {
	i := strings.Index(header, "'"+key+"'")
	if i < 0 {
		return "", badInput(".npy input: header has no %q field", key)
	}
	rest := strings.TrimSpace(header[i+len(key)+2:])
	if !strings.HasPrefix(rest, ":") {
		return "", badInput(".npy input: malformed header near %q", key)
	}
	rest = strings.TrimSpace(rest[1:])
	end := strings.IndexAny(rest, ",}")
	if strings.HasPrefix(rest, "(") {
		end = strings.Index(rest, ")") + 1
	}
	if end <= 0 {
		return "", badInput(".npy input: malformed header near %q", key)
	}
	return strings.TrimSpace(rest[:end]), nil
}
