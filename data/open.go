package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Specs lists the forms of spec accepted by Open.
const Specs = `"fashion-mnist", "fashion-mnist-subset", "fashion-mnist:DIR", "cifar10:DIR" or "folder:DIR"`

// Open resolves a user-facing data set spec and loads split from it:
//
//	fashion-mnist         the full set in DefaultFashionMNISTDir (Debian package dataset-fashion-mnist)
//	fashion-mnist-subset  the embedded 2,000/500 image subset (EmbeddedFashionMNIST)
//	fashion-mnist:DIR     IDX files in DIR (LoadFashionMNIST)
//	cifar10:DIR           CIFAR-10 binary batches in DIR (LoadCIFAR10)
//	folder:DIR            one sub-folder per class (LoadImageFolder)
//
// For the first four, split is "train" or "test", and c, h, w may be 0
// (accept the set's own shape) or must equal it. For folder:DIR, c, h and w
// are required and give the output shape; if DIR has a sub-folder named
// split (e.g. DIR/train and DIR/test) that sub-folder is loaded, otherwise
// DIR itself is loaded for every split, and HoldOut should then separate
// training from evaluation images.
func Open(spec, split string, c, h, w int) (*Dataset, error) {
	kind, dir, hasDir := strings.Cut(spec, ":")
	if hasDir && dir == "" {
		return nil, fmt.Errorf("data: spec %q: expected a directory after %q", spec, kind+":")
	}
	var (
		d   *Dataset
		err error
	)
	switch {
	case kind == "fashion-mnist" && !hasDir:
		d, err = openSystemFashionMNIST(split)
	case kind == "fashion-mnist-subset" && !hasDir:
		d, err = EmbeddedFashionMNIST(split)
	case kind == "fashion-mnist" && hasDir:
		d, err = LoadFashionMNIST(dir, split)
	case kind == "cifar10" && hasDir:
		d, err = LoadCIFAR10(dir, split)
	case kind == "folder" && hasDir:
		if c == 0 || h == 0 || w == 0 {
			return nil, fmt.Errorf("data: spec %q: expected channels, height and width > 0 for an image folder, got %d, %d, %d", spec, c, h, w)
		}
		if split != "" {
			if fi, err := os.Stat(filepath.Join(dir, split)); err == nil && fi.IsDir() {
				dir = filepath.Join(dir, split)
			}
		}
		return LoadImageFolder(dir, c, h, w)
	default:
		return nil, fmt.Errorf("data: spec %q: expected %s", spec, Specs)
	}
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name      string
		want, got int
	}{{"channels", c, d.C}, {"height", h, d.H}, {"width", w, d.W}} {
		if f.want != 0 && f.want != f.got {
			return nil, fmt.Errorf("data: spec %q: %s: requested %d, but the data set has %d (pass 0 to accept it)", spec, f.name, f.want, f.got)
		}
	}
	return d, nil
}

// openSystemFashionMNIST loads split from DefaultFashionMNISTDir, or explains
// how to get the data when the directory is absent.
func openSystemFashionMNIST(split string) (*Dataset, error) {
	if _, err := os.Stat(DefaultFashionMNISTDir); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("data: spec \"fashion-mnist\": %s does not exist; install the full data set with "+
			"`apt-get install dataset-fashion-mnist`, use \"fashion-mnist-subset\" for the embedded 2,000/500 image subset, "+
			"or \"fashion-mnist:DIR\" for IDX files elsewhere", DefaultFashionMNISTDir)
	}
	return LoadFashionMNIST(DefaultFashionMNISTDir, split)
}
