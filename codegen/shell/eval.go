package shell

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	rt "github.com/pnasml/pnas/runtime"
)

// classAccuracy is one class of an -eval report.
type classAccuracy struct {
	Class    int     `json:"class"`
	Label    string  `json:"label"`
	N        int     `json:"n"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
}

// evalResult is the -json output of -eval.
type evalResult struct {
	Model    string          `json:"model"`
	Images   string          `json:"images"`
	N        int             `json:"n"`
	Correct  int             `json:"correct"`
	Accuracy float64         `json:"accuracy"`
	PerClass []classAccuracy `json:"per_class"`
}

// evalSet is a labelled set of images: next returns image i's pixels.
type evalSet struct {
	n      int
	labels []int
	next   func(i int) (*pixels, error)
}

// readInput reads a file, decompressing it when it is gzipped.
func readInput(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, badInput("%v", err)
	}
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		return data, nil
	}
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
	return data, nil
}

// idxHeader returns the dimensions of an IDX file of unsigned bytes.
func idxHeader(path string, data []byte) ([]int, error) {
	if len(data) < 4 || data[0] != 0 || data[1] != 0 || data[2] != 0x08 || data[3] < 1 || data[3] > 4 {
		return nil, badInput("%s: not an IDX file of unsigned bytes (expected magic 00 00 08 01..04)", path)
	}
	nd := int(data[3])
	if len(data) < 4+4*nd {
		return nil, badInput("%s: IDX header is truncated", path)
	}
	dims := make([]int, nd)
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(data[4+4*i:]))
	}
	return dims, nil
}

// openEvalSet opens -eval IMAGES: an IDX image file (optionally gzipped)
// with -labels LABELS, an IDX label file, or a folder with one sub-folder
// of PNG or JPEG images per class (sorted by name: label i is the i-th).
func openEvalSet(images, labelsPath string) (*evalSet, []string, error) {
	st, err := os.Stat(images)
	if err != nil {
		return nil, nil, badInput("-eval: %v", err)
	}
	if st.IsDir() {
		if labelsPath != "" {
			return nil, nil, badInput("-labels: an image folder names its classes by its sub-folders; drop -labels")
		}
		return openFolder(images)
	}
	if labelsPath == "" {
		return nil, nil, badInput("-eval %s: expected -labels LABELS (an IDX label file)", images)
	}
	data, err := readInput(images)
	if err != nil {
		return nil, nil, err
	}
	dims, err := idxHeader(images, data)
	if err != nil {
		return nil, nil, err
	}
	if len(dims) < 3 {
		return nil, nil, badInput("%s: expected [N,H,W] or [N,H,W,C] images, got dimensions %v", images, dims)
	}
	lb, err := readInput(labelsPath)
	if err != nil {
		return nil, nil, err
	}
	ldims, err := idxHeader(labelsPath, lb)
	if err != nil {
		return nil, nil, err
	}
	if len(ldims) != 1 || len(lb) != 8+ldims[0] {
		return nil, nil, badInput("%s: expected a one-dimensional IDX label file of %d bytes after the header, got dimensions %v and %d bytes", labelsPath, ldims[0], ldims, len(lb)-4-4*len(ldims))
	}
	if ldims[0] != dims[0] {
		return nil, nil, badInput("-labels %s holds %d labels, -eval %s holds %d images", labelsPath, ldims[0], images, dims[0])
	}
	set := &evalSet{n: dims[0]}
	for _, l := range lb[8:] {
		set.labels = append(set.labels, int(l))
	}
	set.next = func(i int) (*pixels, error) {
		px, err := decodeIDX(data, i)
		if err != nil {
			return nil, badInput("%s: %v", images, err)
		}
		return px, nil
	}
	return set, nil, nil
}

func openFolder(dir string) (*evalSet, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, badInput("-eval: %v", err)
	}
	var classes []string
	var files []string
	set := &evalSet{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		classes = append(classes, e.Name())
	}
	sort.Strings(classes)
	for c, name := range classes {
		sub, err := os.ReadDir(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, badInput("-eval: %v", err)
		}
		n := 0
		for _, f := range sub {
			ext := strings.ToLower(filepath.Ext(f.Name()))
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") || (ext != ".png" && ext != ".jpg" && ext != ".jpeg") {
				continue
			}
			files = append(files, filepath.Join(dir, name, f.Name()))
			set.labels = append(set.labels, c)
			n++
		}
		if n == 0 {
			return nil, nil, badInput("-eval %s: class folder %s holds no .png, .jpg or .jpeg images", dir, name)
		}
	}
	if len(classes) == 0 {
		return nil, nil, badInput("-eval %s: expected one sub-folder of images per class, found none", dir)
	}
	set.n = len(files)
	set.next = func(i int) (*pixels, error) {
		b, err := os.ReadFile(files[i])
		if err != nil {
			return nil, badInput("%v", err)
		}
		px, err := decodeImage(b)
		if err != nil {
			return nil, badInput("%s: %v", files[i], err)
		}
		return px, nil
	}
	return set, classes, nil
}

// evaluate runs the network over -eval IMAGES and prints top-1 accuracy
// overall and per class.
func evaluate(o *options, stdout io.Writer, in *instance, pool *rt.Pool) error {
	set, folderClasses, err := openEvalSet(o.eval, o.labels)
	if err != nil {
		return err
	}
	spec := in.spec
	if folderClasses != nil && len(folderClasses) > spec.outputs {
		return badInput("-eval %s: %d class folders, the network has %d outputs", o.eval, len(folderClasses), spec.outputs)
	}
	classes := spec.outputs
	n := make([]int, classes)
	ok := make([]int, classes)
	correct := 0
	for i := range set.n {
		l := set.labels[i]
		if l < 0 || l >= classes {
			return badInput("-labels: label %d of image %d is outside the network's %d classes", l, i, classes)
		}
		px, err := set.next(i)
		if err != nil {
			return err
		}
		x, err := prepare(px, spec)
		if err != nil {
			return badInput("image %d: %v", i, err)
		}
		_, logits, err := infer(in, pool, x)
		if err != nil {
			return err
		}
		best := 0
		for j, v := range logits {
			if v > logits[best] {
				best = j
			}
		}
		n[l]++
		if best == l {
			ok[l]++
			correct++
		}
	}
	res := evalResult{Model: spec.name, Images: o.eval, N: set.n, Correct: correct}
	if set.n > 0 {
		res.Accuracy = float64(correct) / float64(set.n)
	}
	for c := range classes {
		label := ""
		switch {
		case c < len(spec.labels):
			label = spec.labels[c]
		case c < len(folderClasses):
			label = folderClasses[c]
		}
		ca := classAccuracy{Class: c, Label: label, N: n[c], Correct: ok[c]}
		if n[c] > 0 {
			ca.Accuracy = float64(ok[c]) / float64(n[c])
		}
		res.PerClass = append(res.PerClass, ca)
	}
	if o.json {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stdout, "%s: top-1 accuracy %.4f (%d/%d) on %s\n", spec.name, res.Accuracy, correct, set.n, o.eval)
	for _, ca := range res.PerClass {
		label := ca.Label
		if label == "" {
			label = "-"
		}
		fmt.Fprintf(stdout, "  class %-4d %-24s %.4f (%d/%d)\n", ca.Class, label, ca.Accuracy, ca.Correct, ca.N)
	}
	return nil
}
