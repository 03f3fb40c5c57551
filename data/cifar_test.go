package data

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cifarRecords returns n CIFAR-10 binary records; record k has label
// labels[k] and pixel j of it equals byte(first+k+j).
func cifarRecords(first int, labels ...byte) []byte {
	var b []byte
	for k, l := range labels {
		b = append(b, l)
		for j := range 3072 {
			b = append(b, byte(first+k+j))
		}
	}
	return b
}

func writeCIFAR(t *testing.T, dir string) {
	t.Helper()
	for i := 1; i <= 5; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)), cifarRecords(10*i, byte(i), byte(i+1)))
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), cifarRecords(100, 9, 0, 4))
}

func TestLoadCIFAR10(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR(t, dir)
	train, err := LoadCIFAR10(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 10 || train.C != 3 || train.H != 32 || train.W != 32 || train.Name != "cifar10/train" {
		t.Fatalf("train: %q %d images of %dx%dx%d", train.Name, train.Len(), train.C, train.H, train.W)
	}
	if want := []uint8{1, 2, 2, 3, 3, 4, 4, 5, 5, 6}; !slices.Equal(train.Labels, want) {
		t.Errorf("train labels %v, want %v", train.Labels, want)
	}
	// Image 3 is record 1 of data_batch_2: pixel j is byte(20+1+j); channel
	// planes are red, green, blue in order, rows top to bottom.
	img := train.Image(3)
	for _, j := range []int{0, 31, 32, 1023, 1024, 2048, 3071} {
		if img[j] != byte(21+j) {
			t.Errorf("train image 3 byte %d: got %d, want %d", j, img[j], byte(21+j))
		}
	}
	if !slices.Equal(train.Classes, CIFAR10Classes) {
		t.Errorf("classes without batches.meta.txt: got %v", train.Classes)
	}
	test, err := LoadCIFAR10(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if test.Len() != 3 || !slices.Equal(test.Labels, []uint8{9, 0, 4}) || test.Classes[9] != "truck" {
		t.Errorf("test: %d images, labels %v", test.Len(), test.Labels)
	}

	// Class names from batches.meta.txt, and the archive's top folder.
	root := t.TempDir()
	sub := filepath.Join(root, "cifar-10-batches-bin")
	writeCIFAR(t, sub)
	names := []string{"plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "lorry"}
	writeFile(t, filepath.Join(sub, "batches.meta.txt"), []byte(strings.Join(names, "\n")+"\n\n"))
	test, err = LoadCIFAR10(root, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(test.Classes, names) {
		t.Errorf("classes from batches.meta.txt: got %v, want %v", test.Classes, names)
	}
}

func TestLoadCIFAR10Corrupt(t *testing.T) {
	badLabel := cifarRecords(0, 3, 10)
	for _, tc := range []struct {
		name     string
		file     string
		content  []byte
		meta     string
		wantFile string
		want     string
	}{
		{"truncated record", "test_batch.bin", cifarRecords(0, 1, 2)[:3073+100], "", "test_batch.bin",
			"byte 3073: record 1 (short read): expected 3073 bytes, got 100 bytes"},
		{"empty file", "test_batch.bin", nil, "", "test_batch.bin",
			"byte 0: record 0 (short read): expected 3073 bytes per record, got an empty file"},
		{"label out of range", "test_batch.bin", badLabel, "", "test_batch.bin",
			"byte 3073: label of record 1: expected 0..9, got 10"},
		{"bad meta", "test_batch.bin", cifarRecords(0, 1), "a\nb\n", "batches.meta.txt",
			"class names: expected 10 non-blank lines, got 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, tc.file), tc.content)
			if tc.meta != "" {
				writeFile(t, filepath.Join(dir, "batches.meta.txt"), []byte(tc.meta))
			}
			_, err := LoadCIFAR10(dir, "test")
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, tc.wantFile)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one naming %s and containing %q", err, tc.wantFile, tc.want)
			}
			var fe *FormatError
			if tc.meta == "" && !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FormatError", err)
			}
		})
	}
	dir := t.TempDir()
	writeCIFAR(t, dir)
	missing := filepath.Join(dir, "data_batch_4.bin")
	if err := removeFile(missing); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCIFAR10(dir, "train"); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing batch: got %v, want an error naming %s", err, missing)
	}
	if _, err := LoadCIFAR10(dir, "all"); err == nil || !strings.Contains(err.Error(), `got "all"`) {
		t.Errorf("bad split: got %v", err)
	}
}
