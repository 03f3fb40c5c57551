package codegen

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/targets"
)

// Code generation has a front end shared by every device and one back end
// per device kind (see targets.Target.DeviceKind). The front end
// ([Generate]) checks the models, runs the IR passes, computes model ids
// and timed layers, and collects the weights blob; a back end lowers each
// pass-optimised model onto its device's operators, plans the device
// memory, packs the weights in its operators' layouts, emits the model's
// source, and supplies the module's other files and build settings.

// backend is the device-specific half of code generation. One value
// compiles one program: lower is called once per model, in order, then
// files once.
type backend interface {
	// lower lowers one pass-optimised model.
	lower(m *ir.Model) (modelBackend, error)
	// files returns the module's files other than the models': main.go,
	// go.mod, the program shell and the runtime or kernels.
	files(g *generated) ([]File, error)
}

// modelBackend carries one lowered model through the later stages.
type modelBackend interface {
	// plan places the model's activations in device memory.
	plan() (MemoryPlan, error)
	// pack appends the model's weights, in its operators' layouts, to the
	// blob.
	pack(bl *blob) error
	// emit renders the model's source file.
	emit(meta modelMeta) (*jen.File, error)
}

// modelMeta is what the front end knows of a model at emission.
type modelMeta struct {
	ident  string // "model0"
	name   string // model name
	id     string // ModelID
	layers []layerInfo
	plan   MemoryPlan
	module string // module path of the program
}

// generated is the front end's state when the back end adds its files.
type generated struct {
	module string
	target *targets.Target
	models []*ir.Model // as given, before the passes
	idents []string
	blob   *blob
}

// newBackend returns the back end for the target's device kind.
func newBackend(t *targets.Target) (backend, error) {
	switch d := t.DeviceKind(); d {
	case targets.DeviceCPU:
		b := &cpuBackend{groups: map[string]bool{}}
		switch {
		case t.GOARCH == "amd64" && t.KernelSet == "avx512":
			b.split = splitSmallS2
		case t.GOARCH == "amd64":
			b.split = splitSmall
		}
		return b, nil
	case targets.DeviceCUDA:
		return newCUDABackend()
	default:
		return nil, fmt.Errorf("codegen: target %s: device %q has no code generator", t.Name, d)
	}
}

// cpuBackend compiles for CPUs: runtime operators on a channels-last
// arena, weights packed by the runtime's Pack functions, a copy of the
// runtime package in rt/.
type cpuBackend struct {
	groups map[string]bool // runtime file groups the models' steps need
	fuse   FuseMode
	split  splitRule // small blocks split by channels on more than one thread
}

type cpuModel struct {
	b      *cpuBackend
	l      *lowered
	packed *packedWeights
}

func (b *cpuBackend) lower(m *ir.Model) (modelBackend, error) {
	l, err := lower(m, b.fuse, b.split)
	if err != nil {
		return nil, err
	}
	for _, st := range l.steps {
		b.groups[stepGroup(st)] = true
	}
	if len(l.fusions) > 0 || len(l.splits) > 0 {
		b.groups["mbconv"] = true
	}
	return &cpuModel{b: b, l: l}, nil
}

func (c *cpuModel) plan() (MemoryPlan, error) { return c.l.plan() }

func (c *cpuModel) pack(bl *blob) (err error) {
	c.packed, err = packWeights(c.l, bl)
	return err
}

func (c *cpuModel) emit(meta modelMeta) (*jen.File, error) {
	e := &modelEmitter{l: c.l, ident: meta.ident, name: meta.name, id: meta.id, packed: c.packed,
		layers: meta.layers, plan: meta.plan, rtPath: meta.module + "/rt"}
	return e.render(), nil
}

func (b *cpuBackend) files(g *generated) ([]File, error) {
	mainSrc, err := renderJen(mainFile(g.models, g.idents, g.target), "main.go")
	if err != nil {
		return nil, err
	}
	out := []File{
		{Path: "main.go", Data: mainSrc},
		{Path: "weights.bin", Data: g.blob.data},
		{Path: "go.mod", Data: []byte(fmt.Sprintf("// %s\n\nmodule %s\n\ngo 1.26\n", Banner, g.module))},
	}
	rtPath := g.module + "/rt"
	shell, err := memoized("shell "+rtPath, func() ([]File, error) { return shellFiles(rtPath) })
	if err != nil {
		return nil, err
	}
	out = append(out, shell...)
	rtFiles, err := runtimeFiles(g.target.KernelSet, b.groups)
	if err != nil {
		return nil, err
	}
	return append(out, rtFiles...), nil
}
