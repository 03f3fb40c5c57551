package main

import (
	"encoding/json"
	"fmt"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/internal/progress"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
)

// EvalCmd measures accuracy with the reference interpreter.
type EvalCmd struct {
	Model string `arg:"" help:"Model file (NAME.json)." type:"existingfile"`
	Data  string `help:"Data set: ${datasets}." default:"fashion-mnist"`
	Split string `help:"Split to evaluate (train or test)." default:"test" enum:"train,test"`
	Limit int    `help:"Evaluate only the first N images (0 = all)." default:"0"`
	Batch int    `help:"Images per interpreter batch." default:"50"`
	JSON  bool   `help:"Print the result as JSON."`

	Binary string `help:"Measure the compiled program (from pnas compile) instead of the interpreter." type:"existingfile" placeholder:"PATH"`
}

// Help gives examples.
func (EvalCmd) Help() string {
	return `Examples:
  pnas eval model.json                                  # full Fashion-MNIST test split
  pnas eval model.json --data fashion-mnist-subset      # the embedded 500-image test subset
  pnas eval model.json --split test --limit 1000 --json
  pnas eval model.json --data folder:photos/ --split test
  pnas eval model.json --binary out/model                # the compiled program you ship

The reference interpreter is the plain, exact oracle that compiled programs
are tested against; it favours clarity over speed.`
}

// evalResult is the --json output.
type evalResult struct {
	Model    string    `json:"model"`
	Data     string    `json:"data"`
	Split    string    `json:"split"`
	N        int       `json:"n"`
	Correct  int       `json:"correct"`
	Top1     float64   `json:"top1"`
	PerClass []float64 `json:"per_class_top1"`
}

// Run evaluates.
func (c *EvalCmd) Run(g *globals) error {
	if c.Batch <= 0 {
		return fmt.Errorf("--batch: expected a positive number, got %d", c.Batch)
	}
	if c.Limit < 0 {
		return fmt.Errorf("--limit: expected 0 or a positive number, got %d", c.Limit)
	}
	m, err := ir.Load(c.Model)
	if err != nil {
		return err
	}
	s := m.Input.Shape
	ds, err := data.Open(c.Data, c.Split, s[0], s[1], s[2])
	if err != nil {
		return err
	}
	shapes, err := m.InferShapes()
	if err != nil {
		return err
	}
	classes := shapes[m.Output][0]
	if len(ds.Classes) > classes {
		return fmt.Errorf("%s has %d classes but model %s outputs %d scores", c.Data, len(ds.Classes), c.Model, classes)
	}
	n := ds.Len()
	if c.Limit > 0 && c.Limit < n {
		n = c.Limit
	}
	if c.Binary != "" {
		return c.runBinary(g, m, ds, n)
	}
	per := s[0] * s[1] * s[2]
	bar := progress.New("eval", n)
	defer bar.Done()
	correct := 0
	classN := make([]int, classes)
	classOK := make([]int, classes)
	var in []float32
	for start := 0; start < n; start += c.Batch {
		end := min(start+c.Batch, n)
		b := end - start
		in, err = m.Input.Preprocess(ds.Pixels[start*per:end*per], b, in)
		if err != nil {
			return err
		}
		out, err := interp.Run(m, in, b)
		if err != nil {
			return err
		}
		for i := 0; i < b; i++ {
			row := out[i*classes : (i+1)*classes]
			best := 0
			for j, v := range row {
				if v > row[best] {
					best = j
				}
			}
			lbl := int(ds.Labels[start+i])
			classN[lbl]++
			if best == lbl {
				correct++
				classOK[lbl]++
			}
		}
		bar.Add(b)
		bar.SetStatus("top-1 %.4f", float64(correct)/float64(end))
	}
	bar.Done()
	res := evalResult{Model: c.Model, Data: c.Data, Split: c.Split, N: n, Correct: correct, Top1: float64(correct) / float64(max(n, 1))}
	for j := range classN {
		acc := 0.0
		if classN[j] > 0 {
			acc = float64(classOK[j]) / float64(classN[j])
		}
		res.PerClass = append(res.PerClass, acc)
	}
	return c.report(g, res, res, classN, m, ds, "")
}

// report prints an evaluation: out as indented JSON with --json, else the
// top-1 line (followed by via, when given) and one line per class, named by
// the model's labels, else the data set's classes, else their index.
func (c *EvalCmd) report(g *globals, out any, r evalResult, counts []int, m *ir.Model, ds *data.Dataset, via string) error {
	if c.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(g.stdout, "top-1 accuracy %.4f (%d/%d) on %s %s%s\n", r.Top1, r.Correct, r.N, c.Data, c.Split, via)
	for j, acc := range r.PerClass {
		name := fmt.Sprint(j)
		if j < len(m.Input.Labels) {
			name = m.Input.Labels[j]
		} else if j < len(ds.Classes) {
			name = ds.Classes[j]
		}
		fmt.Fprintf(g.stdout, "  %-12s %.4f (%d images)\n", name, acc, counts[j])
	}
	return nil
}
