package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strings"

	"github.com/pnasml/pnas/internal/atomicfile"
)

// DefaultFashionMNISTDir is where the Debian package dataset-fashion-mnist
// installs the four Fashion-MNIST IDX files.
const DefaultFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), dimension count.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// fashionFiles returns the base names of split's image and label files.
func fashionFiles(split string) (images, labels string, err error) {
	switch split {
	case "train":
		return "train-images-idx3-ubyte", "train-labels-idx1-ubyte", nil
	case "test":
		return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", nil
	}
	return "", "", fmt.Errorf("data: split: expected \"train\" or \"test\", got %q", split)
}

// findIDX returns dir/base.gz if it exists, else dir/base if that exists.
func findIDX(dir, base string) (string, error) {
	for _, name := range []string{base + ".gz", base} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("data: %w", err)
		}
	}
	return "", fmt.Errorf("data: %s: expected %s.gz or %s, found neither", dir, base, base)
}

// LoadFashionMNIST loads split ("train" or "test") of Fashion-MNIST from the
// IDX files in dir: train-images-idx3-ubyte and train-labels-idx1-ubyte, or
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each gzip-compressed
// with a .gz suffix (preferred when both exist) or raw.
func LoadFashionMNIST(dir, split string) (*Dataset, error) {
	ib, lb, err := fashionFiles(split)
	if err != nil {
		return nil, err
	}
	ip, err := findIDX(dir, ib)
	if err != nil {
		return nil, err
	}
	lp, err := findIDX(dir, lb)
	if err != nil {
		return nil, err
	}
	d, err := LoadIDX(ip, lp, FashionMNISTClasses)
	if err != nil {
		return nil, err
	}
	d.Name = "fashion-mnist/" + split
	return d, nil
}

// LoadIDX loads greyscale images from an IDX3 unsigned-byte file (N x H x W)
// and their labels from an IDX1 unsigned-byte file (N), both read raw or, if
// the name ends in ".gz", through gzip. Every label must index classes.
func LoadIDX(imagesPath, labelsPath string, classes []string) (*Dataset, error) {
	img, err := readFileMaybeGzip(imagesPath)
	if err != nil {
		return nil, err
	}
	lab, err := readFileMaybeGzip(labelsPath)
	if err != nil {
		return nil, err
	}
	d, err := parseIDX(imagesPath, img, labelsPath, lab, classes)
	if err != nil {
		return nil, err
	}
	d.Name = strings.TrimSuffix(filepath.Base(imagesPath), ".gz")
	return d, nil
}

// readFileMaybeGzip returns the content of path, decompressed if the name
// ends in ".gz".
func readFileMaybeGzip(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return raw, nil
	}
	return gunzip(path, raw)
}

// gunzip decompresses raw, the content of the file named name, reading to
// the end so that the gzip checksum and length are verified.
func gunzip(name string, raw []byte) ([]byte, error) {
	br := bytes.NewReader(raw)
	zr, err := gzip.NewReader(br)
	if err != nil {
		got := err.Error()
		if len(raw) >= 2 {
			got = fmt.Sprintf("%#02x %#02x (%v)", raw[0], raw[1], err)
		}
		return nil, formatErr(name, 0, "gzip header", "magic 0x1f 0x8b and a valid header", got)
	}
	var out bytes.Buffer
	out.Grow(4 * len(raw))
	if _, err := io.Copy(&out, zr); err != nil {
		return nil, formatErr(name, int64(out.Len()), "gzip data (offset in decompressed content)", "an intact gzip stream",
			fmt.Sprintf("%v after %d decompressed bytes, having read %d of %d compressed bytes",
				err, out.Len(), len(raw)-br.Len(), len(raw)))
	}
	return out.Bytes(), nil
}

// parseIDX decodes the contents of an images and a labels IDX file.
func parseIDX(imagesName string, img []byte, labelsName string, lab []byte, classes []string) (*Dataset, error) {
	if len(classes) == 0 || len(classes) > 256 {
		return nil, fmt.Errorf("data: class count: expected 1..256, got %d", len(classes))
	}
	idims, err := idxHeader(imagesName, img, idxImagesMagic, 3)
	if err != nil {
		return nil, err
	}
	ldims, err := idxHeader(labelsName, lab, idxLabelsMagic, 1)
	if err != nil {
		return nil, err
	}
	n, h, w := idims[0], idims[1], idims[2]
	if h == 0 || w == 0 {
		return nil, formatErr(imagesName, 8, "image rows and columns", "both > 0", fmt.Sprintf("%d x %d", h, w))
	}
	if ldims[0] != n {
		return nil, formatErr(labelsName, 4, "label count",
			fmt.Sprintf("%d (the image count in %s)", n, imagesName), fmt.Sprint(ldims[0]))
	}
	const ihdr, lhdr = 16, 8
	hi, size := bits.Mul64(uint64(n), uint64(h)*uint64(w))
	if hi != 0 {
		return nil, formatErr(imagesName, 4, "image dimensions", "a pixel count below 2^64",
			fmt.Sprintf("%d x %d x %d", n, h, w))
	}
	if got := uint64(len(img) - ihdr); got != size {
		what := "short read"
		if got > size {
			what = "trailing bytes"
		}
		return nil, formatErr(imagesName, int64(min(got, size))+ihdr, "pixel data ("+what+")",
			fmt.Sprintf("%d bytes (%d images of %dx%d)", size, n, h, w), fmt.Sprintf("%d bytes", got))
	}
	if got := uint64(len(lab) - lhdr); got != uint64(n) {
		what := "short read"
		if got > uint64(n) {
			what = "trailing bytes"
		}
		return nil, formatErr(labelsName, int64(min(got, uint64(n)))+lhdr, "label data ("+what+")",
			fmt.Sprintf("%d bytes", n), fmt.Sprintf("%d bytes", got))
	}
	labels := lab[lhdr:]
	for i, l := range labels {
		if int(l) >= len(classes) {
			return nil, formatErr(labelsName, int64(lhdr+i), fmt.Sprintf("label of image %d", i),
				fmt.Sprintf("0..%d", len(classes)-1), fmt.Sprint(l))
		}
	}
	return &Dataset{
		C: 1, H: int(h), W: int(w),
		Pixels:  img[ihdr:],
		Labels:  labels,
		Classes: append([]string(nil), classes...),
	}, nil
}

// idxHeader checks the magic number of an IDX unsigned-byte file with ndim
// dimensions and returns the dimensions.
func idxHeader(name string, b []byte, magic uint32, ndim int) ([]uint32, error) {
	hdr := 4 + 4*ndim
	if len(b) >= 4 {
		if m := binary.BigEndian.Uint32(b); m != magic {
			return nil, formatErr(name, 0, "IDX magic", fmt.Sprintf("%#08x (unsigned bytes, %d dimensions)", magic, ndim),
				fmt.Sprintf("%#08x", m))
		}
	}
	if len(b) < hdr {
		return nil, formatErr(name, int64(len(b)), "IDX header (short read)",
			fmt.Sprintf("%d header bytes", hdr), fmt.Sprintf("%d bytes", len(b)))
	}
	dims := make([]uint32, ndim)
	for i := range dims {
		dims[i] = binary.BigEndian.Uint32(b[4+4*i:])
	}
	return dims, nil
}

// WriteIDX writes the greyscale (C == 1) data set d as an IDX3 images file
// and an IDX1 labels file, gzip-compressed when a name ends in ".gz". The
// output depends only on d (the gzip header carries no name or time).
func WriteIDX(d *Dataset, imagesPath, labelsPath string) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if d.C != 1 {
		return fmt.Errorf("data: WriteIDX %s: channels: expected 1, got %d", d.Name, d.C)
	}
	ihdr := make([]byte, 16)
	binary.BigEndian.PutUint32(ihdr[0:], idxImagesMagic)
	binary.BigEndian.PutUint32(ihdr[4:], uint32(d.Len()))
	binary.BigEndian.PutUint32(ihdr[8:], uint32(d.H))
	binary.BigEndian.PutUint32(ihdr[12:], uint32(d.W))
	lhdr := make([]byte, 8)
	binary.BigEndian.PutUint32(lhdr[0:], idxLabelsMagic)
	binary.BigEndian.PutUint32(lhdr[4:], uint32(d.Len()))
	if err := writeMaybeGzip(imagesPath, ihdr, d.Pixels); err != nil {
		return err
	}
	return writeMaybeGzip(labelsPath, lhdr, d.Labels)
}

func writeMaybeGzip(path string, parts ...[]byte) error {
	var buf bytes.Buffer
	if strings.HasSuffix(path, ".gz") {
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return fmt.Errorf("data: %s: %w", path, err)
		}
		for _, p := range parts {
			zw.Write(p) // writes to a bytes.Buffer cannot fail
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("data: %s: %w", path, err)
		}
	} else {
		for _, p := range parts {
			buf.Write(p)
		}
	}
	if err := atomicfile.Write(path, buf.Bytes()); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}
