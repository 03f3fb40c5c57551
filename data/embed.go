package data

import (
	"embed"
	"fmt"
)

//go:generate go run ./fmnist/gen.go -src /usr/share/datasets/fashion-mnist -out fmnist -train 2000 -test 500 -seed 1

// fmnistFS holds the committed Fashion-MNIST subset written by fmnist/gen.go.
// The whole directory is embedded (not fmnist/*.gz) so that the package, and
// with it the generator, still builds when the subset files are missing.
//
//go:embed fmnist
var fmnistFS embed.FS

// Sizes of the embedded Fashion-MNIST subset.
const (
	EmbeddedTrainLen = 2000 // 200 images per class
	EmbeddedTestLen  = 500  // 50 images per class
)

// EmbeddedFashionMNIST returns split ("train" or "test") of the Fashion-MNIST
// subset compiled into the package: 2,000 training images (200 per class)
// and 500 test images (50 per class), chosen from the full set by
// HoldOut(full, n, 1). docs/data.md records how fmnist/gen.go made it.
func EmbeddedFashionMNIST(split string) (*Dataset, error) {
	ib, lb, err := fashionFiles(split)
	if err != nil {
		return nil, err
	}
	read := func(base string) (string, []byte, error) {
		name := "fmnist/" + base + ".gz"
		raw, err := fmnistFS.ReadFile(name)
		if err != nil {
			return "", nil, fmt.Errorf("data: embedded %s: %w (regenerate it with go generate in package data)", name, err)
		}
		name += " (embedded)"
		b, err := gunzip(name, raw)
		return name, b, err
	}
	in, img, err := read(ib)
	if err != nil {
		return nil, err
	}
	ln, lab, err := read(lb)
	if err != nil {
		return nil, err
	}
	d, err := parseIDX(in, img, ln, lab, FashionMNISTClasses)
	if err != nil {
		return nil, err
	}
	d.Name = "fashion-mnist-subset/" + split
	return d, nil
}
