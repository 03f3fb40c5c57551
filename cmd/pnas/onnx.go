package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/internal/atomicfile"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/onnx"
)

// ImportCmd converts an ONNX model into a pnas model.
type ImportCmd struct {
	Model  string    `arg:"" help:"ONNX model file." type:"existingfile"`
	Output string    `short:"o" help:"Output model file (NAME.json; weights go to NAME.safetensors beside it)." required:""`
	Name   string    `help:"Model name (default: the output file's base name)."`
	Mean   []float32 `help:"Per-channel input mean, subtracted after scaling pixels to [0,1] (ONNX files do not carry it)."`
	Std    []float32 `help:"Per-channel input standard deviation."`
	Labels string    `help:"Class labels: a file with one label per line, or 'fashion-mnist' / 'cifar10'."`
}

// Help gives examples.
func (ImportCmd) Help() string {
	return `Reads ONNX models of the MobileNet family (Conv with groups,
BatchNormalization, Relu, Clip as ReLU6, Add, GlobalAveragePool, Flatten,
Gemm/MatMul, flattening Reshape, Identity, Dropout, Softmax). Any other op or
attribute is an error naming it.

Examples:
  pnas import mobilenetv2.onnx -o mbv2.json --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225
  pnas import net.onnx -o net.json --labels fashion-mnist`
}

// Run imports.
func (c *ImportCmd) Run(g *globals) error {
	b, err := os.ReadFile(c.Model)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(c.Output, ".json") {
		return fmt.Errorf("-o %s: expected a file name ending in .json", c.Output)
	}
	opts := onnx.Options{Name: c.Name, Mean: c.Mean, Std: c.Std}
	if opts.Name == "" {
		opts.Name = strings.TrimSuffix(filepath.Base(c.Output), ".json")
	}
	switch c.Labels {
	case "":
	case "fashion-mnist":
		opts.Labels = data.FashionMNISTClasses
	case "cifar10":
		opts.Labels = data.CIFAR10Classes
	default:
		lb, err := os.ReadFile(c.Labels)
		if err != nil {
			return fmt.Errorf("--labels: %w", err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(lb)), "\n") {
			opts.Labels = append(opts.Labels, strings.TrimSpace(l))
		}
	}
	m, err := onnx.Import(b, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Model, err)
	}
	if err := os.MkdirAll(filepath.Dir(c.Output), 0o755); err != nil {
		return err
	}
	if err := ir.Save(m, c.Output); err != nil {
		return err
	}
	st, err := m.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "imported %s: %d ops, %s parameters, %s MACs -> %s\n", c.Model, len(m.Ops), count(int64(st.Params)), count(st.MACs), c.Output)
	return nil
}

// ExportCmd writes a pnas model as ONNX.
type ExportCmd struct {
	Model  string `arg:"" help:"Model file (NAME.json)." type:"existingfile"`
	Output string `short:"o" help:"Output ONNX file." required:""`
}

// Help gives examples.
func (ExportCmd) Help() string {
	return `Writes an opset-13 ONNX model, so a searched model can be run in ONNX Runtime or other engines.

Example:
  pnas export runs/fmnist/model.json -o model.onnx`
}

// Run exports.
func (c *ExportCmd) Run(g *globals) error {
	m, err := ir.Load(c.Model)
	if err != nil {
		return err
	}
	b, err := onnx.Export(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.Output), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(c.Output, b); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "wrote %s (%d bytes)\n", c.Output, len(b))
	return nil
}
