package codegen

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/pnasml/pnas/codegen/gpu"
	"github.com/pnasml/pnas/ir"
)

// The CUDA back end lowers every op onto one generated GPU kernel (package
// codegen/gpu), places the activations of a batch in one device arena,
// packs the weights in the kernels' layouts (OIHW convolutions, batchnorm
// folded into a scale and a bias), and emits model.go as data: the
// kernel launches and the timed layers. The module holds the PTX of
// every kernel for sm_80 and sm_90 (kernels_sm80.ptx, kernels_sm90.ptx,
// embedded by main.go), the program shell of package codegen/cudashell,
// and requires github.com/ebitengine/purego, which loads the CUDA driver
// at run time so that the program builds with cgo off. The stages are
// gpu.Lower, Net.Plan (the arena) and Net.Pack (the weights' layout, then
// appended to the blob).

// puregoModule is the module the CUDA programs require, and its go.sum
// lines; a test checks them against this repository's go.mod and go.sum.
const (
	puregoModule = "github.com/ebitengine/purego"
	puregoVer    = "v0.11.3"
	puregoSum    = "github.com/ebitengine/purego v0.11.3 h1:OB+JLpdm7ioymhyA+6s5kbb/uOuYycAgL8NNTFc5MLg=\n" +
		"github.com/ebitengine/purego v0.11.3/go.mod h1:DCHPP08djqhNSoTfImcnHYQRZmd0qhakvrozqaEYhGQ=\n"
)

type cudaBackend struct {
	kernels []*gpu.Kernel // every model's, in order
}

func newCUDABackend() (backend, error) { return &cudaBackend{}, nil }

type cudaModel struct {
	b    *cudaBackend
	m    *ir.Model
	net  *gpu.Net
	base int // first float of the model's weights in the blob
}

func (b *cudaBackend) lower(m *ir.Model) (modelBackend, error) {
	net, err := gpu.Lower(m)
	if err != nil {
		return nil, err
	}
	return &cudaModel{b: b, m: m, net: net}, nil
}

func (c *cudaModel) plan() (MemoryPlan, error) {
	c.net.Plan()
	st, err := c.m.Stats()
	if err != nil {
		return MemoryPlan{}, err
	}
	n := c.net
	return MemoryPlan{Bytes: 4 * int64(n.ActFloats), LowerBound: 4 * int64(n.LowerBound), IRPeak: st.PeakActivationBytes,
		Overhead: 4 * int64(n.Padding), Buffers: n.Buffers, Tensors: n.Tensors}, nil
}

func (c *cudaModel) pack(bl *blob) error {
	c.net.Pack()
	bl.align()
	c.base = bl.floats()
	bl.add(c.net.Weights, c.base)
	bl.align()
	return nil
}

func (c *cudaModel) emit(meta modelMeta) (*jen.File, error) {
	n := c.net
	for _, k := range n.Kernels {
		k.Name = meta.ident + "_" + k.Name
	}
	c.b.kernels = append(c.b.kernels, n.Kernels...)
	in := c.m.Input
	f := jen.NewFile("main")
	f.HeaderComment(Banner)
	// launch index of the first op at or after op i
	launchAt := func(op int) int {
		for i, l := range n.Launches {
			if l.Op >= op {
				return i
			}
		}
		return len(n.Launches)
	}
	var layerVals []jen.Code
	for _, ly := range meta.layers {
		var ops []jen.Code
		for _, o := range ly.ops {
			ops = append(ops, jen.Lit(o))
		}
		layerVals = append(layerVals, jen.Line().Values(jen.Id("name").Op(":").Lit(ly.name), jen.Id("key").Op(":").Lit(ly.key),
			jen.Id("ops").Op(":").Index().String().Values(ops...),
			jen.Id("first").Op(":").Lit(launchAt(ly.first)), jen.Id("end").Op(":").Lit(launchAt(ly.end))))
	}
	var launches []jen.Code
	for i, l := range n.Launches {
		var args []jen.Code
		for _, a := range l.Args {
			if a.Kind == gpu.ArgWeight {
				args = append(args, jen.Values(jen.Id("weight").Op(":").True(), jen.Id("off").Op(":").Lit(a.Off)))
			} else {
				args = append(args, jen.Values(jen.Id("off").Op(":").Lit(a.Off)))
			}
		}
		k := n.Kernels[i]
		launches = append(launches, jen.Line().Comment(fmt.Sprintf("%s: %s", c.m.Ops[l.Op].Name, string(c.m.Ops[l.Op].Type)+opDetail(&c.m.Ops[l.Op]))).Line().Values(
			jen.Id("kernel").Op(":").Lit(k.Name),
			jen.Id("xPer").Op(":").Lit(l.Grid.XPer), jen.Id("xDiv").Op(":").Lit(l.Grid.XDiv), jen.Id("y").Op(":").Lit(l.Grid.Y),
			jen.Id("threads").Op(":").Lit(k.Threads),
			jen.Id("args").Op(":").Index().Id("arg").Values(args...)))
	}
	field := func(name string, v jen.Code) jen.Code { return jen.Line().Id(name).Op(":").Add(v) }
	f.Commentf("%s is the network %q (model id %s): input %s, %d outputs.", meta.ident, meta.name, meta.id, dims(in.Shape), n.Output.Len)
	f.Commentf("Its %d IR tensors live in %d buffers of a %d-byte device arena a sample; %d kernel launches.", meta.plan.Tensors, meta.plan.Buffers, meta.plan.Bytes, len(n.Launches))
	f.Var().Id(meta.ident).Op("=").Op("&").Id("network").Values(
		field("name", jen.Lit(meta.name)),
		field("id", jen.Lit(meta.id)),
		field("inC", jen.Lit(in.Shape[0])),
		field("inH", jen.Lit(in.Shape[1])),
		field("inW", jen.Lit(in.Shape[2])),
		field("mean", floatsLit(in.Mean)),
		field("std", floatsLit(in.Std)),
		field("labels", stringsLit(in.Labels)),
		field("outputs", jen.Lit(n.Output.Len)),
		field("probOutput", jen.Lit(n.Prob)),
		field("arenaFloats", jen.Lit(n.ActFloats)),
		field("weightsOff", jen.Lit(c.base)),
		field("weightsLen", jen.Lit(len(n.Weights))),
		field("input", jen.Lit(n.Input.Off)),
		field("output", jen.Lit(n.Output.Off)),
		field("logits", jen.Lit(n.Logits.Off)),
		field("layers", jen.Index().Id("layer").Values(append(layerVals, jen.Line())...)),
		field("launches", jen.Index().Id("launch").Values(append(launches, jen.Line())...)),
		jen.Line(),
	)
	return f, nil
}

func (b *cudaBackend) files(g *generated) ([]File, error) {
	var out []File
	for _, arch := range []string{gpu.SM80, gpu.SM90} {
		ptx, err := gpu.PTX(arch, b.kernels)
		if err != nil {
			return nil, fmt.Errorf("codegen: %w", err)
		}
		out = append(out, File{Path: "kernels_" + strings.ReplaceAll(arch, "_", "") + ".ptx", Data: []byte(ptx)})
	}
	mainSrc, err := renderJen(cudaMainFile(g), "main.go")
	if err != nil {
		return nil, err
	}
	out = append(out,
		File{Path: "main.go", Data: mainSrc},
		File{Path: "weights.bin", Data: g.blob.data},
		File{Path: "go.mod", Data: []byte(fmt.Sprintf("// %s\n\nmodule %s\n\ngo 1.26\n\nrequire %s %s\n", Banner, g.module, puregoModule, puregoVer))},
		File{Path: "go.sum", Data: []byte(puregoSum)},
	)
	shell, err := memoized("cudashell", cudaShellFiles)
	if err != nil {
		return nil, err
	}
	return append(out, shell...), nil
}

// cudaMainFile emits main.go: the embedded weights and PTX, and the
// program table.
func cudaMainFile(g *generated) *jen.File {
	f := jen.NewFile("main")
	f.HeaderComment(Banner)
	var names []string
	for _, m := range g.models {
		names = append(names, fmt.Sprintf("%q", m.Name))
	}
	f.PackageComment(fmt.Sprintf("Command model runs the neural network %s on an NVIDIA GPU, compiled by", strings.Join(names, ", ")))
	f.PackageComment(fmt.Sprintf("pnas for target %s (kernel set %s). Run it with -h for its flags.", g.target.Name, g.target.KernelSet))
	f.Anon("embed")
	f.Comment("weights holds every network's weights as little-endian float32 arrays.")
	f.Comment("")
	f.Comment("//go:embed weights.bin")
	f.Var().Id("weights").Index().Byte()
	f.Comment("ptxSM80 and ptxSM90 hold every kernel as PTX for compute capability 8.x and 9.x.")
	f.Comment("")
	f.Comment("//go:embed kernels_sm80.ptx")
	f.Var().Id("ptxSM80").String()
	f.Comment("//go:embed kernels_sm90.ptx")
	f.Var().Id("ptxSM90").String()
	var nets []jen.Code
	for _, id := range g.idents {
		nets = append(nets, jen.Id(id))
	}
	f.Func().Id("main").Params().Block(
		jen.Qual("os", "Exit").Call(jen.Id("run").Call(
			jen.Qual("os", "Args").Index(jen.Lit(1), jen.Empty()), jen.Qual("os", "Stdout"), jen.Qual("os", "Stderr"),
			jen.Op("&").Id("program").Values(
				jen.Line().Id("target").Op(":").Lit(g.target.Name),
				jen.Line().Id("kernelSet").Op(":").Lit(g.target.KernelSet),
				jen.Line().Id("weights").Op(":").Id("weights"),
				jen.Line().Id("ptx").Op(":").Map(jen.String()).String().Values(jen.Lit(gpu.SM80).Op(":").Id("ptxSM80"), jen.Lit(gpu.SM90).Op(":").Id("ptxSM90")),
				jen.Line().Id("nets").Op(":").Index().Op("*").Id("network").Values(nets...),
				jen.Line(),
			))))
	return f
}

// cudaShellFiles copies the CUDA program shell into package main.
func cudaShellFiles() ([]File, error) {
	entries, err := fs.ReadDir(templates, "cudashell")
	if err != nil {
		return nil, err
	}
	var out []File
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || n == "doc.go" || strings.HasSuffix(n, "_test.go") {
			continue
		}
		src, err := templates.ReadFile("cudashell/" + n)
		if err != nil {
			return nil, err
		}
		data, err := rewriteGo(n, generatedRE.ReplaceAll(src, nil), "main", "")
		if err != nil {
			return nil, err
		}
		out = append(out, File{Path: "shell_" + n, Data: data})
	}
	return out, nil
}
