package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers the JPEG decoder with image.Decode
	_ "image/png"  // registers the PNG decoder with image.Decode
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// imageExts are the file name extensions (compared case-insensitively) that
// LoadImageFolder decodes.
var imageExts = []string{".png", ".jpg", ".jpeg"}

// MaxImageSide bounds the h and w accepted by LoadImageFolder and Open.
const MaxImageSide = 4096

// LoadImageFolder loads a data set laid out as one sub-folder per class:
// the sub-folders of dir, sorted by name, are the classes (label i is the
// i-th name) and every file in them whose name ends in .png, .jpg or .jpeg
// (any case) is an image of that class, decoded by content. Other files,
// names starting with "." and deeper folders are skipped deliberately, so
// that notes, thumbnails or OS metadata beside the images do no harm; files
// directly in dir are skipped too. A file with an image extension that does
// not decode is an error naming it, as is a class folder with no images,
// an image of more than 2^26 pixels (8192 x 8192) and one whose header
// claims more pixels than its file can hold (checked before decoding, so
// that a corrupt header cannot make the loader allocate the image).
//
// Each image is converted to c channels (1: greyscale, by the luma weights
// of image/color's GrayModel; 3: RGB), with any transparency composited onto
// black, and resized to h x w by bilinear interpolation with pixel centres
// aligned (no resampling when the size already matches). Images are ordered
// by class, then by file name.
func LoadImageFolder(dir string, c, h, w int) (*Dataset, error) {
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("data: folder %s: channels: expected 1 (greyscale) or 3 (RGB), got %d", dir, c)
	}
	if h <= 0 || w <= 0 || h > MaxImageSide || w > MaxImageSide {
		return nil, fmt.Errorf("data: folder %s: image size: expected height and width in 1..%d, got %d x %d", dir, MaxImageSide, h, w)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	var classes []string
	for _, e := range entries {
		if isClassDir(dir, e) {
			classes = append(classes, e.Name())
		}
	}
	slices.Sort(classes)
	if len(classes) == 0 {
		return nil, fmt.Errorf("data: folder %s: expected one sub-folder per class, found no sub-folders", dir)
	}
	if len(classes) > 256 {
		return nil, fmt.Errorf("data: folder %s: class sub-folders: expected at most 256, got %d", dir, len(classes))
	}
	d := &Dataset{Name: "folder:" + dir, C: c, H: h, W: w, Classes: classes}
	for label, class := range classes {
		cdir := filepath.Join(dir, class)
		files, err := os.ReadDir(cdir)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		n := 0
		for _, f := range files { // ReadDir sorts by file name
			name := f.Name()
			if strings.HasPrefix(name, ".") || f.IsDir() || !slices.Contains(imageExts, strings.ToLower(filepath.Ext(name))) {
				continue
			}
			p := filepath.Join(cdir, name)
			img, err := decodeImage(p)
			if err != nil {
				return nil, err
			}
			d.Pixels = append(d.Pixels, toCHW(img, c, h, w)...)
			d.Labels = append(d.Labels, uint8(label))
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("data: folder %s: class %q: expected at least one %s file, found none",
				dir, class, strings.Join(imageExts, "/"))
		}
	}
	return d, nil
}

// isClassDir reports whether entry e of dir is a class sub-folder (a
// directory, or a symbolic link to one, whose name does not start with ".").
func isClassDir(dir string, e os.DirEntry) bool {
	if strings.HasPrefix(e.Name(), ".") {
		return false
	}
	if e.IsDir() {
		return true
	}
	if e.Type()&os.ModeSymlink != 0 {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		return err == nil && fi.IsDir()
	}
	return false
}

// maxSourcePixels bounds the size of an image LoadImageFolder decodes
// (8192 x 8192 pixels).
const maxSourcePixels = 1 << 26

// decodeImage reads and decodes the PNG or JPEG file at path.
func decodeImage(path string) (image.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return decodeImageData(path, b)
}

// decodeImageData decodes b, the content of the PNG or JPEG file path. The
// header's size is checked first, so that a file claiming more pixels than
// it can hold is rejected before the decoder allocates them.
func decodeImageData(path string, b []byte) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		got := fmt.Sprintf("%d bytes that do not decode (%v)", len(b), err)
		return nil, formatErr(path, 0, "image", "a PNG or JPEG image", got)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, formatErr(path, 0, format+" image size", "at least 1x1 pixels", fmt.Sprintf("%dx%d", cfg.Width, cfg.Height))
	}
	if cfg.Width > maxSourcePixels/cfg.Height {
		return nil, formatErr(path, 0, format+" image size", fmt.Sprintf("at most %d pixels", maxSourcePixels),
			fmt.Sprintf("%dx%d", cfg.Width, cfg.Height))
	}
	if limit := pixelsHeld(format, len(b)); cfg.Width*cfg.Height > limit {
		return nil, formatErr(path, 0, format+" image size (header)",
			fmt.Sprintf("at most %d pixels, as many as %d bytes can hold", limit, len(b)),
			fmt.Sprintf("%dx%d: the file is truncated or corrupt", cfg.Width, cfg.Height))
	}
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		got := fmt.Sprintf("%d bytes that do not decode (%v)", len(b), err)
		return nil, formatErr(path, 0, "image", "a PNG or JPEG image", got)
	}
	if r := img.Bounds(); r.Empty() {
		return nil, formatErr(path, 0, format+" image size", "at least 1x1 pixels", fmt.Sprintf("%dx%d", r.Dx(), r.Dy()))
	}
	return img, nil
}

// pixelsHeld bounds the pixels an encoded image of n bytes can describe.
// A PNG pixel takes at least one bit before deflate, which expands at most
// 1032 times; a JPEG spends at least one bit on every 8x8 block (its DC
// coefficient). Other formats get no bound beyond maxSourcePixels. (The
// input decoder of generated programs, codegen/shell, bounds images the
// same way.)
func pixelsHeld(format string, n int) int {
	switch format {
	case "png":
		return 8 * 1032 * n
	case "jpeg":
		return 64 * 8 * n
	}
	return maxSourcePixels
}

// toCHW converts img to c channels and resizes it to h x w, returning the
// c*h*w bytes in CHW order.
func toCHW(img image.Image, c, h, w int) []uint8 {
	r := img.Bounds()
	sh, sw := r.Dy(), r.Dx()
	src := make([]float32, c*sh*sw) // CHW planes of the source, values 0..255
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			px := img.At(r.Min.X+x, r.Min.Y+y)
			if c == 1 {
				src[y*sw+x] = float32(color.GrayModel.Convert(px).(color.Gray).Y)
				continue
			}
			cr, cg, cb, _ := px.RGBA() // premultiplied: transparency over black
			src[0*sh*sw+y*sw+x] = float32(cr >> 8)
			src[1*sh*sw+y*sw+x] = float32(cg >> 8)
			src[2*sh*sw+y*sw+x] = float32(cb >> 8)
		}
	}
	out := make([]uint8, c*h*w)
	for ch := 0; ch < c; ch++ {
		resizeBilinear(src[ch*sh*sw:(ch+1)*sh*sw], sh, sw, out[ch*h*w:(ch+1)*h*w], h, w)
	}
	return out
}

// resizeBilinear resamples the sh x sw plane src into the h x w plane dst.
// Output pixel (y, x) samples the source at ((y+0.5)*sh/h - 0.5,
// (x+0.5)*sw/w - 0.5), clamped to the image, and blends the four nearest
// source pixels; results are rounded to the nearest byte.
func resizeBilinear(src []float32, sh, sw int, dst []uint8, h, w int) {
	ys0, ys1, yf := bilinearAxis(sh, h)
	xs0, xs1, xf := bilinearAxis(sw, w)
	for y := range h {
		r0, r1 := src[ys0[y]*sw:], src[ys1[y]*sw:]
		fy := yf[y]
		for x := range w {
			a, b, fx := xs0[x], xs1[x], xf[x]
			top := r0[a] + (r0[b]-r0[a])*fx
			bot := r1[a] + (r1[b]-r1[a])*fx
			v := top + (bot-top)*fy
			dst[y*w+x] = uint8(math.Round(float64(min(max(v, 0), 255))))
		}
	}
}

// bilinearAxis returns, for each of n output positions along an axis of
// source length sn, the two source indices to blend and the weight of the
// second.
func bilinearAxis(sn, n int) (i0, i1 []int, f []float32) {
	i0, i1, f = make([]int, n), make([]int, n), make([]float32, n)
	scale := float64(sn) / float64(n)
	for o := range n {
		s := (float64(o)+0.5)*scale - 0.5
		s = min(max(s, 0), float64(sn-1))
		lo := int(math.Floor(s))
		hi := min(lo+1, sn-1)
		i0[o], i1[o], f[o] = lo, hi, float32(s-float64(lo))
	}
	return i0, i1, f
}
