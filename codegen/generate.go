package codegen

import (
	"bytes"
	"embed"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/dave/jennifer/jen"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/pass"
	"github.com/pnasml/pnas/targets"
)

//go:embed shell/*.go cpuid/*.txt cudashell/*.go
var templates embed.FS

// runtimeImport is the import path of the runtime in this repository; the
// generated module imports its copy as "<module>/rt".
const runtimeImport = "github.com/pnasml/pnas/runtime"

// Options controls Generate.
type Options struct {
	// Target is the target to compile for (see package targets). Its
	// kernel set decides which runtime kernels are copied.
	Target *targets.Target
	// Module is the module path of the generated program; empty means a
	// name derived from the first model's name.
	Module string
	// Passes controls the IR passes (dumps, disabled passes, checks).
	Passes pass.Options
	// FuseMBConv says which inverted-residual blocks run fused (CPU
	// targets; default FuseAuto).
	FuseMBConv FuseMode
}

// File is one file of a generated module.
type File struct {
	Path string // slash-separated, relative to the module root
	Data []byte
}

// Program is a generated Go module held in memory.
type Program struct {
	Module string
	Target *targets.Target
	Files  []File       // sorted by path
	Plans  []MemoryPlan // per model, in order
	IDs    []string     // per model, ModelID
	Models []*ir.Model  // the models after the IR passes
}

// File returns the content of the file at path, or nil.
func (p *Program) File(path string) []byte {
	for _, f := range p.Files {
		if f.Path == path {
			return f.Data
		}
	}
	return nil
}

var modRE = regexp.MustCompile(`[^a-z0-9._-]+`)

// ModuleName derives a module path from a model name: "pnasmodel/" and the
// name in lower case letters,
// digits, '.', '_' and '-', starting with a letter.
func ModuleName(name string) string {
	s := strings.Trim(modRE.ReplaceAllString(strings.ToLower(name), "-"), "-._")
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "model-" + s
	}
	// A first path element without a dot could collide with a standard
	// library package ("net", "image"): keep generated modules under their
	// own prefix.
	return "pnasmodel/" + strings.TrimRight(s, "-._")
}

// Generate compiles one or more models into one program. Each model runs
// the IR passes, is lowered onto runtime operators, gets its memory plan
// and has its weights packed into the shared blob. The result is
// deterministic: the same models and options give the same bytes.
func Generate(models []*ir.Model, opt Options) (*Program, error) {
	if len(models) == 0 {
		return nil, fmt.Errorf("codegen: no models")
	}
	if opt.Target == nil {
		return nil, fmt.Errorf("codegen: no target")
	}
	mod := opt.Module
	if mod == "" {
		mod = ModuleName(models[0].Name)
	}
	if err := checkModulePath(mod); err != nil {
		return nil, err
	}
	be, err := newBackend(opt.Target)
	if err != nil {
		return nil, err
	}
	if cb, ok := be.(*cpuBackend); ok {
		cb.fuse = opt.FuseMBConv
	}
	p := &Program{Module: mod, Target: opt.Target}
	g := &generated{module: mod, target: opt.Target, models: models, blob: &blob{}}
	names := map[string]bool{}
	for k, m := range models {
		if names[m.Name] {
			return nil, fmt.Errorf("codegen: two models are named %q", m.Name)
		}
		names[m.Name] = true
		id, err := ModelID(m)
		if err != nil {
			return nil, err
		}
		om, err := pass.Apply(m, opt.Passes)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Name, err)
		}
		mb, err := be.lower(om)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Name, err)
		}
		plan, err := mb.plan()
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Name, err)
		}
		if err := mb.pack(g.blob); err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Name, err)
		}
		ident := fmt.Sprintf("model%d", k)
		f, err := mb.emit(modelMeta{ident: ident, name: m.Name, id: id, layers: layers(om), plan: plan, module: mod})
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Name, err)
		}
		file := "model.go"
		if len(models) > 1 {
			file = fmt.Sprintf("model%d.go", k)
		}
		src, err := renderJen(f, file)
		if err != nil {
			return nil, err
		}
		p.Files = append(p.Files, File{Path: file, Data: src})
		p.Plans = append(p.Plans, plan)
		p.IDs = append(p.IDs, id)
		p.Models = append(p.Models, om)
		g.idents = append(g.idents, ident)
	}
	rest, err := be.files(g)
	if err != nil {
		return nil, err
	}
	p.Files = append(p.Files, rest...)
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Path < p.Files[j].Path })
	return p, nil
}

func checkModulePath(mod string) error {
	if mod == "" || strings.ContainsAny(mod, " \t\n\"'`\\") || strings.HasPrefix(mod, "/") || strings.HasSuffix(mod, "/") {
		return fmt.Errorf("codegen: %q is not a usable module path", mod)
	}
	return nil
}

func renderJen(f *jen.File, name string) ([]byte, error) {
	var b bytes.Buffer
	if err := f.Render(&b); err != nil {
		return nil, fmt.Errorf("codegen: rendering %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// mainFile emits main.go: the embedded weights and the program table.
func mainFile(models []*ir.Model, idents []string, t *targets.Target) *jen.File {
	f := jen.NewFile("main")
	f.HeaderComment(Banner)
	var names []string
	for _, m := range models {
		names = append(names, strconv.Quote(m.Name))
	}
	f.PackageComment(fmt.Sprintf("Command model runs the neural network %s, compiled by pnas for", strings.Join(names, ", ")))
	f.PackageComment(fmt.Sprintf("target %s (kernel set %s). Run it with -h for its flags.", t.Name, t.KernelSet))
	f.Anon("embed")
	f.Comment("weights holds every network's weights as little-endian float32 arrays.")
	f.Comment("")
	f.Comment("//go:embed weights.bin")
	f.Var().Id("weights").Index().Byte()
	var nets []jen.Code
	for _, id := range idents {
		nets = append(nets, jen.Id(id))
	}
	f.Func().Id("main").Params().Block(
		jen.Qual("os", "Exit").Call(jen.Id("run").Call(
			jen.Qual("os", "Args").Index(jen.Lit(1), jen.Empty()), jen.Qual("os", "Stdout"), jen.Qual("os", "Stderr"),
			jen.Op("&").Id("program").Values(
				jen.Line().Id("target").Op(":").Lit(t.Name),
				jen.Line().Id("kernelSet").Op(":").Lit(t.KernelSet),
				jen.Line().Id("weights").Op(":").Id("weights"),
				jen.Line().Id("nets").Op(":").Index().Op("*").Id("network").Values(nets...),
				jen.Line(),
			))))
	return f
}

// rewriteGo parses a Go source file, sets its package name, rewrites the
// runtime import path, prepends the banner and formats it.
func rewriteGo(name string, src []byte, pkg, rtPath string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("codegen: %s: %w", name, err)
	}
	f.Name.Name = pkg
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == runtimeImport {
			imp.Path.Value = strconv.Quote(rtPath)
		}
	}
	// The package doc comment describes the original package.
	if f.Doc != nil {
		drop := f.Doc
		f.Doc = nil
		var keep []*ast.CommentGroup
		for _, c := range f.Comments {
			if c != drop {
				keep = append(keep, c)
			}
		}
		f.Comments = keep
	}
	var b bytes.Buffer
	b.WriteString("// " + Banner + "\n\n")
	if err := format.Node(&b, fset, f); err != nil {
		return nil, fmt.Errorf("codegen: %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// memo caches rewritten source files: they depend only on their key.
var memo struct {
	sync.Mutex
	files map[string][]File
}

func memoized(key string, make func() ([]File, error)) ([]File, error) {
	memo.Lock()
	defer memo.Unlock()
	if f, ok := memo.files[key]; ok {
		return f, nil
	}
	f, err := make()
	if err != nil {
		return nil, err
	}
	if memo.files == nil {
		memo.files = map[string][]File{}
	}
	memo.files[key] = f
	return f, nil
}

// shellFiles copies the program shell into package main.
func shellFiles(rtPath string) ([]File, error) {
	entries, err := fs.ReadDir(templates, "shell")
	if err != nil {
		return nil, err
	}
	var out []File
	for _, e := range entries {
		n := e.Name()
		if n == "doc.go" || strings.HasSuffix(n, "_test.go") {
			continue
		}
		src, err := templates.ReadFile("shell/" + n)
		if err != nil {
			return nil, err
		}
		data, err := rewriteGo(n, src, "main", rtPath)
		if err != nil {
			return nil, err
		}
		out = append(out, File{Path: "shell_" + n, Data: data})
	}
	return out, nil
}

// Write writes the program into dir, creating it if needed. Generated
// files left in dir by an earlier compile that this program no longer has
// (for example kernels of another target) are removed; other files are
// left alone.
func (p *Program) Write(dir string) error {
	want := map[string]bool{}
	for _, f := range p.Files {
		want[f.Path] = true
		full := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.Data, 0o644); err != nil {
			return err
		}
	}
	for _, sub := range []string{".", "rt"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		for _, e := range entries {
			rel := path.Join(sub, e.Name())
			if e.IsDir() || want[rel] || !(strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, ".s") || strings.HasSuffix(rel, ".ptx")) {
				continue
			}
			full := filepath.Join(dir, filepath.FromSlash(rel))
			if isGenerated(full) {
				if err := os.Remove(full); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

var generatedRE = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

func isGenerated(file string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	if len(b) > 4096 {
		b = b[:4096]
	}
	return generatedRE.Match(b)
}
