// Command gpucheck prepares and checks the GPU device check of
// scripts/gpu-check.sh.
//
// With -prepare it builds, on any machine, the two reference networks of
// the check with random weights: the 28x28 Fashion-MNIST MBConv net (a 3x3
// stem, six inverted-residual blocks with k3/k5/k7, a 1x1 head of 256,
// pooling, 10 classes) and MobileNetV2-224 (1000 classes). For each it
// writes DIR/NAME/model.json and its weights, compiles the CUDA program
// DIR/NAME/model, and writes an input batch DIR/NAME/input.bin with the
// reference interpreter's outputs DIR/NAME/ref.bin. With -compare it
// reads the outputs the programs dumped on the GPU (DIR/NAME/out.bin) and
// checks them against the reference within -tol, relative to max(1,
// |reference|); it exits with status 1 when one differs. With -emulate it
// runs the same kernels in the emulator of package codegen/gpu on the
// first sample instead, on any machine, and compares them the same way.
// With -roofline N it reads the -bench -json reports DIR/NAME/bench-bN.json
// and prints, per layer class, the achieved GFLOP/s and GB/s and the share
// of the roofline (-peak-gflops, -peak-gbs; an H200's FP32 and HBM figures
// by default) that binds.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/pnasml/pnas/codegen"
	"github.com/pnasml/pnas/codegen/gpu"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
	"github.com/pnasml/pnas/ir/pass"
	"github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

// Nets are the networks of the check.
var nets = []string{"fmnist28", "mobilenetv2-224"}

// samples is the batch the correctness check runs.
const samples = 4

func main() {
	prepare := flag.Bool("prepare", false, "build the programs, inputs and reference outputs")
	compare := flag.Bool("compare", false, "compare the programs' outputs with the reference")
	emulate := flag.Bool("emulate", false, "run the kernels in the emulator on the first sample and compare")
	dir := flag.String("dir", "out/gpu-check", "work directory")
	tol := flag.Float64("tol", 1e-4, "largest allowed error relative to max(1, |reference|)")
	roof := flag.Int("roofline", 0, "print the per-class roofline share of the batch-N bench reports")
	peakGFLOPS := flag.Float64("peak-gflops", 67000, "FP32 peak of the GPU, GFLOP/s (H200: 67 TFLOP/s without tensor cores)")
	peakGBS := flag.Float64("peak-gbs", 4800, "memory bandwidth of the GPU, GB/s (H200: 4.8 TB/s)")
	flag.Parse()
	var err error
	switch {
	case *prepare:
		err = prepareAll(*dir)
	case *compare:
		err = compareAll(*dir, *tol, "out.bin")
	case *roof > 0:
		for _, name := range nets {
			if err = roofline(os.Stdout, *dir, name, *roof, *peakGFLOPS, *peakGBS); err != nil {
				break
			}
		}
	case *emulate:
		err = emulateAll(*dir)
		if err == nil {
			err = compareAll(*dir, *tol, "emulated.bin")
		}
	default:
		err = fmt.Errorf("give -prepare or -compare")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(1)
	}
}

// build makes a network with random weights: a 3x3 stem, inverted
// residual blocks {expand, channels, stride, kernel}, a 1x1 head, pooling
// and a classifier, every convolution with batchnorm and ReLU6 as in
// MobileNetV2.
func build(name string) (*ir.Model, error) {
	rng := rand.New(rand.NewPCG(7, 7))
	var b *ir.Builder
	var blocks [][4]int
	var x string
	switch name {
	case "fmnist28":
		b = ir.NewBuilder(name, 1, 28, 28, rng)
		x = b.ConvBNAct("stem", b.Input(), 16, 3, 1, 1, ir.ActReLU6)
		blocks = [][4]int{{3, 16, 1, 3}, {6, 24, 2, 5}, {3, 24, 1, 3}, {6, 40, 2, 7}, {3, 40, 1, 5}, {6, 64, 1, 3}}
	default:
		b = ir.NewBuilder(name, 3, 224, 224, rng)
		x = b.ConvBNAct("stem", b.Input(), 32, 3, 2, 1, ir.ActReLU6)
		for _, r := range [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
			for i := 0; i < r[2]; i++ {
				s := 1
				if i == 0 {
					s = r[3]
				}
				blocks = append(blocks, [4]int{r[0], r[1], s, 3})
			}
		}
	}
	for i, bl := range blocks {
		cin := b.Shape(x)[0]
		x = archnet.AddMBConv(b, fmt.Sprintf("b%d", i), x, cin, bl[1], space.Candidate{Kernel: bl[3], Expand: bl[0]}, bl[2], bl[2] == 1 && cin == bl[1])
	}
	head, classes := 256, 10
	if name != "fmnist28" {
		head, classes = 1280, 1000
	}
	x = b.ConvBNAct("head", x, head, 1, 1, 1, ir.ActReLU6)
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	x = b.Dense("fc", x, classes, nil, nil)
	return b.Model(x)
}

func writeFloats(path string, v []float32) error {
	buf := make([]byte, 0, 4*len(v))
	for _, f := range v {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(f))
	}
	return os.WriteFile(path, buf, 0o644)
}

func readFloats(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%s: %d bytes is not a whole number of float32 values", path, len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func prepareAll(dir string) error {
	tg, err := targets.Lookup("cuda")
	if err != nil {
		return err
	}
	for _, name := range nets {
		m, err := build(name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		nd := filepath.Join(dir, name)
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return err
		}
		if err := ir.Save(m, filepath.Join(nd, "model.json")); err != nil {
			return err
		}
		src := filepath.Join(nd, "src")
		if _, err := codegen.GenerateAndBuild([]*ir.Model{m}, codegen.Options{Target: tg}, src, codegen.BuildOptions{Target: tg, Output: filepath.Join(nd, "model")}); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rng := rand.New(rand.NewPCG(3, 3))
		x := make([]float32, samples*m.Input.Shape[0]*m.Input.Shape[1]*m.Input.Shape[2])
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		ref, err := interp.Run(m, x, samples)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := writeFloats(filepath.Join(nd, "input.bin"), x); err != nil {
			return err
		}
		if err := writeFloats(filepath.Join(nd, "ref.bin"), ref); err != nil {
			return err
		}
		fmt.Printf("%s: %d ops, program %s, %d samples with reference outputs\n", name, len(m.Ops), filepath.Join(nd, "model"), samples)
	}
	return nil
}

// emulateAll runs the first sample of every net in the emulator and
// writes its outputs to emulated.bin.
func emulateAll(dir string) error {
	for _, name := range nets {
		nd := filepath.Join(dir, name)
		m, err := ir.Load(filepath.Join(nd, "model.json"))
		if err != nil {
			return err
		}
		om, err := pass.Apply(m, pass.Options{})
		if err != nil {
			return err
		}
		net, err := gpu.Lower(om)
		if err != nil {
			return err
		}
		x, err := readFloats(filepath.Join(nd, "input.bin"))
		if err != nil {
			return err
		}
		start := time.Now()
		out, err := net.Emulate(x[:net.Input.Len], 1)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("%s: emulated %d kernel launches in %.1f s\n", name, len(net.Launches), time.Since(start).Seconds())
		if err := writeFloats(filepath.Join(nd, "emulated.bin"), out); err != nil {
			return err
		}
	}
	return nil
}

func compareAll(dir string, tol float64, file string) error {
	failed := 0
	for _, name := range nets {
		nd := filepath.Join(dir, name)
		ref, err := readFloats(filepath.Join(nd, "ref.bin"))
		if err != nil {
			return err
		}
		got, err := readFloats(filepath.Join(nd, file))
		if err != nil {
			return err
		}
		if len(got) == 0 || len(got) > len(ref) || len(ref)%len(got) != 0 {
			return fmt.Errorf("%s: %d outputs, expected %d (or the first samples')", name, len(got), len(ref))
		}
		ref = ref[:len(got)]
		worst := 0.0
		for i := range ref {
			d := math.Abs(float64(got[i])-float64(ref[i])) / math.Max(1, math.Abs(float64(ref[i])))
			if !(d <= worst) {
				worst = d
			}
		}
		verdict := "ok"
		if !(worst <= tol) {
			verdict = "FAIL"
			failed++
		}
		fmt.Printf("%s: largest relative error %.3g over %d outputs (tolerance %.0e): %s\n", name, worst, len(ref), tol, verdict)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d networks differ from the reference", failed, len(nets))
	}
	return nil
}
