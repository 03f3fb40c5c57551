package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/ir"
)

// binaryEval is the -json output of a compiled program's -eval.
type binaryEval struct {
	N        int     `json:"n"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
	PerClass []struct {
		Class    int     `json:"class"`
		N        int     `json:"n"`
		Accuracy float64 `json:"accuracy"`
	} `json:"per_class"`
}

// writeIDX writes the first n images of ds as an IDX file of unsigned
// bytes ([N,H,W], or [N,H,W,C] channels last) and their labels as a second.
func writeIDX(ds *data.Dataset, n int, images, labels string) error {
	dims := []int{n, ds.H, ds.W}
	if ds.C > 1 {
		dims = append(dims, ds.C)
	}
	b := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	plane := ds.H * ds.W
	for i := range n {
		img := ds.Image(i)
		for p := range plane {
			for c := range ds.C {
				b = append(b, img[c*plane+p])
			}
		}
	}
	if err := os.WriteFile(images, b, 0o644); err != nil {
		return err
	}
	l := binary.BigEndian.AppendUint32([]byte{0, 0, 8, 1}, uint32(n))
	l = append(l, ds.Labels[:n]...)
	return os.WriteFile(labels, l, 0o644)
}

// runBinary measures the compiled program c.Binary on the first n images of
// ds with its -eval mode and prints the result as the interpreter's
// evaluation does.
func (c *EvalCmd) runBinary(g *globals, m *ir.Model, ds *data.Dataset, n int) error {
	tmp, err := os.MkdirTemp("", "pnas-eval-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	images, labels := filepath.Join(tmp, "images-idx-ubyte"), filepath.Join(tmp, "labels-idx1-ubyte")
	if err := writeIDX(ds, n, images, labels); err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(c.Binary, "-eval", images, "-labels", labels, "-json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("--binary %s: %v: %s", c.Binary, err, strings.TrimSpace(stderr.String()))
	}
	var be binaryEval
	if err := json.Unmarshal(stdout.Bytes(), &be); err != nil {
		return fmt.Errorf("--binary %s: -eval output is not the expected JSON (a program compiled by an older pnas?): %v", c.Binary, err)
	}
	if be.N != n {
		return fmt.Errorf("--binary %s: evaluated %d images, expected %d", c.Binary, be.N, n)
	}
	res := struct {
		evalResult
		Binary string `json:"binary"`
	}{evalResult{Model: c.Model, Data: c.Data, Split: c.Split, N: n, Correct: be.Correct, Top1: be.Accuracy}, c.Binary}
	counts := make([]int, len(be.PerClass))
	for _, pc := range be.PerClass {
		res.PerClass = append(res.PerClass, pc.Accuracy)
		counts[pc.Class] = pc.N
	}
	return c.report(g, res, res.evalResult, counts, m, ds, " (compiled program "+c.Binary+")")
}
