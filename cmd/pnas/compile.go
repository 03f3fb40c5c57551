package main

import (
	"fmt"
	"strings"

	"github.com/pnasml/pnas/codegen"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/pass"
	"github.com/pnasml/pnas/targets"
)

// CompileCmd compiles a model into a standalone Go program.
type CompileCmd struct {
	Model   string   `arg:"" help:"Model file (NAME.json, weights in NAME.safetensors beside it)." type:"existingfile"`
	Target  string   `help:"Target to compile for: amd64, amd64-avx512, arm64 (or a device preset such as arm64/cortex-a76), generic, cuda, or a user target (default: the built-in target with the best kernels this machine runs)." placeholder:"NAME"`
	Out     string   `short:"o" required:"" help:"Directory of the generated Go module (created if needed)." type:"path" placeholder:"DIR"`
	GOAMD64 string   `name:"goamd64" help:"Override the target's GOAMD64 level (v1, v2, v3 or v4)." placeholder:"LEVEL"`
	GOOS    string   `name:"goos" help:"GOOS to build for, for targets that leave it open (generic)." placeholder:"GOOS"`
	GOARCH  string   `name:"goarch" help:"GOARCH to build for, for targets that leave it open (generic)." placeholder:"GOARCH"`
	NoBuild bool     `name:"no-build" help:"Write the module but do not run go build."`
	Module  string   `help:"Module path of the generated program (default: derived from the model name)." placeholder:"PATH"`
	Debug   []string `short:"d" help:"Debug flags: pass/<name>/dump prints the IR after that pass; check verifies the IR after every pass." placeholder:"FLAG"`
}

// Help gives examples.
func (CompileCmd) Help() string {
	return `Runs the IR passes, plans activation memory, packs the weights and writes a
self-contained Go module (go.mod without requirements, main.go, model.go,
weights.bin, the program shell and the runtime kernels in rt/), then builds
it into DIR/model with cgo off. The binary's path is the last line printed.

Examples:
  pnas compile model.json -o out/model
  pnas compile model.json --target amd64 -o out/avx2
  pnas compile model.json --target generic --goarch arm64 -o out/arm64
  pnas compile model.json --target cuda -o out/g      # NVIDIA GPU (docs/cuda.md)
  pnas compile model.json -o out/m --no-build -d pass/fold-bn/dump

Run the program with -h for its flags: out/model/model -input image.png`
}

// debugOptions parses the -d flags.
func debugOptions(flags []string, c *CompileCmd, g *globals) (pass.Options, error) {
	var opt pass.Options
	for _, f := range flags {
		switch {
		case f == "check":
			opt.Check = true
		case strings.HasPrefix(f, "pass/") && strings.HasSuffix(f, "/dump"):
			opt.Dump = append(opt.Dump, strings.TrimSuffix(strings.TrimPrefix(f, "pass/"), "/dump"))
			opt.DumpTo = g.stdout
		default:
			return opt, fmt.Errorf("-d %q: unknown debug flag (expected pass/<name>/dump with <name> one of %s, or check)",
				f, strings.Join(pass.Names(), ", "))
		}
	}
	return opt, nil
}

// Run compiles and builds.
func (c *CompileCmd) Run(g *globals) error {
	popt, err := debugOptions(c.Debug, c, g)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	m, err := ir.Load(c.Model)
	if err != nil {
		return err
	}
	t, err := resolveTarget(c.Target)
	if err != nil {
		return err
	}
	bopt := codegen.BuildOptions{Target: t, GOOS: c.GOOS, GOARCH: c.GOARCH, GOAMD64: c.GOAMD64}
	env, err := bopt.BuildEnv()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	p, err := codegen.Generate([]*ir.Model{m}, codegen.Options{Target: t, Module: c.Module, Passes: popt})
	if err != nil {
		return err
	}
	om := p.Models[0]
	plan := p.Plans[0]
	fmt.Fprintf(g.stdout, "model %s (id %s): %d ops, %d after the IR passes\n", m.Name, p.IDs[0], len(m.Ops), len(om.Ops))
	fmt.Fprintf(g.stdout, "target %s: %s kernels, %s\n", t.Name, t.KernelSet, strings.Join(env, " "))
	if msg := hostNote(t, env); msg != "" {
		fmt.Fprintf(g.stderr, "pnas: warning: %s\n", msg)
	}
	fmt.Fprintf(g.stdout, "peak activation memory: %d bytes (IR %d bytes; runtime layout padding at most %d bytes) in %d buffers\n",
		plan.Bytes, plan.IRPeak, plan.Overhead, plan.Buffers)
	fmt.Fprintf(g.stdout, "weights: %d bytes\n", len(p.File("weights.bin")))
	if err := p.Write(c.Out); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "wrote module %s: %d files in %s\n", p.Module, len(p.Files), c.Out)
	if c.NoBuild {
		return nil
	}
	bin, err := codegen.Build(c.Out, bopt)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, bin)
	return nil
}

// hostNote says when the program built with env will not run on this
// machine: another OS or architecture, or a CPU that lacks features the
// target (its kernel set, its GOAMD64 level) needs. Go's own start-up check
// would otherwise be the first to say so, when the program dies.
func hostNote(t *targets.Target, env []string) string {
	if t.DeviceKind() != targets.DeviceCPU {
		return ""
	}
	c := *t
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOS":
			c.GOOS = v
		case "GOARCH":
			c.GOARCH = v
		case "GOAMD64":
			c.GOAMD64 = v
		}
	}
	if err := c.HostSupports(); err != nil {
		return fmt.Sprintf("%v; the program will not run on this machine", err)
	}
	return ""
}

// resolveTarget looks a target up by name; the empty name is the built-in
// target with the best kernels this machine runs.
func resolveTarget(name string) (*targets.Target, error) {
	if name == "" {
		return codegen.HostTarget()
	}
	return targets.Lookup(name)
}
