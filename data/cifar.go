package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CIFAR10Classes are the CIFAR-10 class names in label order, used when the
// directory has no batches.meta.txt.
var CIFAR10Classes = []string{
	"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck",
}

// CIFAR-10 binary record layout: one label byte, then 32x32 red, green and
// blue planes.
const (
	cifarC, cifarH, cifarW = 3, 32, 32
	cifarRecord            = 1 + cifarC*cifarH*cifarW
)

// LoadCIFAR10 loads split ("train" or "test") of CIFAR-10 from the binary
// version's files in dir: data_batch_1.bin ... data_batch_5.bin for train,
// test_batch.bin for test. If dir has no such file but has a
// cifar-10-batches-bin sub-directory (the archive's top folder), that is
// used. Each file is a sequence of 3073-byte records (label, then 1024 red,
// 1024 green and 1024 blue bytes, rows top to bottom); any number of
// records per file is accepted. Class names come from batches.meta.txt (one
// per line, blank lines ignored) when present, else CIFAR10Classes.
func LoadCIFAR10(dir, split string) (*Dataset, error) {
	var files []string
	switch split {
	case "train":
		for i := 1; i <= 5; i++ {
			files = append(files, fmt.Sprintf("data_batch_%d.bin", i))
		}
	case "test":
		files = []string{"test_batch.bin"}
	default:
		return nil, fmt.Errorf("data: split: expected \"train\" or \"test\", got %q", split)
	}
	if _, err := os.Stat(filepath.Join(dir, files[0])); errors.Is(err, os.ErrNotExist) {
		sub := filepath.Join(dir, "cifar-10-batches-bin")
		if _, err := os.Stat(filepath.Join(sub, files[0])); err == nil {
			dir = sub
		}
	}
	classes := CIFAR10Classes
	metaPath := filepath.Join(dir, "batches.meta.txt")
	if meta, err := os.ReadFile(metaPath); err == nil {
		classes = nil
		for _, line := range strings.Split(string(meta), "\n") {
			if s := strings.TrimSpace(line); s != "" {
				classes = append(classes, s)
			}
		}
		if len(classes) != len(CIFAR10Classes) {
			return nil, fmt.Errorf("data: %s: class names: expected %d non-blank lines, got %d",
				metaPath, len(CIFAR10Classes), len(classes))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("data: %w", err)
	}
	d := &Dataset{Name: "cifar10/" + split, C: cifarC, H: cifarH, W: cifarW, Classes: append([]string(nil), classes...)}
	for _, f := range files {
		p := filepath.Join(dir, f)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("data: cifar10 %s: %w", split, err)
		}
		if err := appendCIFAR(d, p, b); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// appendCIFAR decodes the records in b, the content of file name, onto d.
func appendCIFAR(d *Dataset, name string, b []byte) error {
	if len(b) == 0 {
		return formatErr(name, 0, "record 0 (short read)", fmt.Sprintf("%d bytes per record", cifarRecord), "an empty file")
	}
	if rem := len(b) % cifarRecord; rem != 0 {
		n := len(b) / cifarRecord
		return formatErr(name, int64(n*cifarRecord), fmt.Sprintf("record %d (short read)", n),
			fmt.Sprintf("%d bytes", cifarRecord), fmt.Sprintf("%d bytes", rem))
	}
	n := len(b) / cifarRecord
	d.Pixels = append(d.Pixels, make([]uint8, n*(cifarRecord-1))...)
	d.Labels = append(d.Labels, make([]uint8, n)...)
	pix := d.Pixels[len(d.Pixels)-n*(cifarRecord-1):]
	lab := d.Labels[len(d.Labels)-n:]
	for i := range n {
		rec := b[i*cifarRecord : (i+1)*cifarRecord]
		if int(rec[0]) >= len(d.Classes) {
			return formatErr(name, int64(i*cifarRecord), fmt.Sprintf("label of record %d", i),
				fmt.Sprintf("0..%d", len(d.Classes)-1), fmt.Sprint(rec[0]))
		}
		lab[i] = rec[0]
		copy(pix[i*(cifarRecord-1):], rec[1:])
	}
	return nil
}
