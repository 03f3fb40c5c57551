package golden_test

import (
	"bytes"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pnasml/pnas/codegen"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/targets"
)

var update = flag.Bool("update", false, "rewrite the expected files of testdata/*.txtar from the current code generator")

// A case is a txtar archive. Its comment says what the case covers and
// names the target on a line "target: NAME". Its files are:
//
//	model.json  the IR document
//	weights     one line per weight, "name dim x dim ...": the values are
//	            a fixed function of the name (see fillWeights)
//	main.go     the expected generated main.go
//	model.go    the expected generated model.go
//	kernels_sm90.ptx  the expected PTX, for targets of device cuda
//
// go test ./golden -update rewrites main.go and model.go.
type archive struct {
	comment string
	files   []archiveFile
}

type archiveFile struct {
	name string
	data []byte
}

// parseTxtar reads the txtar format: a comment, then files introduced by
// "-- name --" lines.
func parseTxtar(data []byte) *archive {
	a := &archive{}
	var cur *archiveFile
	var comment bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		s := strings.TrimRight(string(line), "\n")
		if strings.HasPrefix(s, "-- ") && strings.HasSuffix(s, " --") && len(s) > 6 {
			a.files = append(a.files, archiveFile{name: strings.TrimSpace(s[3 : len(s)-3])})
			cur = &a.files[len(a.files)-1]
			continue
		}
		if cur == nil {
			comment.Write(line)
		} else {
			cur.data = append(cur.data, line...)
		}
	}
	a.comment = comment.String()
	return a
}

func (a *archive) format() []byte {
	var b bytes.Buffer
	b.WriteString(a.comment)
	for _, f := range a.files {
		fmt.Fprintf(&b, "-- %s --\n", f.name)
		b.Write(f.data)
		if len(f.data) > 0 && f.data[len(f.data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func (a *archive) file(name string) []byte {
	for _, f := range a.files {
		if f.name == name {
			return f.data
		}
	}
	return nil
}

func (a *archive) set(name string, data []byte) {
	for i := range a.files {
		if a.files[i].name == name {
			a.files[i].data = data
			return
		}
	}
	a.files = append(a.files, archiveFile{name: name, data: data})
}

// fillWeights gives every weight listed in spec deterministic values: a
// hash of the name seeds a sequence in [-0.25, 0.25); scales are 1 plus
// it and variances 0.5 plus its magnitude.
func fillWeights(m *ir.Model, spec []byte) error {
	m.Params = map[string]*ir.Tensor{}
	for i, line := range strings.Split(strings.TrimSpace(string(spec)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			return fmt.Errorf("weights line %d: expected \"name dim x dim ...\", got %q", i+1, line)
		}
		var shape []int
		for _, d := range strings.Split(strings.Join(f[1:], ""), "x") {
			v, err := strconv.Atoi(d)
			if err != nil || v <= 0 {
				return fmt.Errorf("weights line %d: bad shape %q", i+1, strings.Join(f[1:], " "))
			}
			shape = append(shape, v)
		}
		t := ir.NewTensor(shape...)
		h := fnv.New64a()
		h.Write([]byte(f[0]))
		s := h.Sum64()
		for j := range t.Data {
			s = s*6364136223846793005 + 1442695040888963407
			v := float32(int64(s>>40)%1000) / 4000
			switch {
			case strings.HasSuffix(f[0], ".var"):
				v = 0.5 + max(v, -v)
			case strings.HasSuffix(f[0], ".scale"):
				v = 1 + v
			}
			t.Data[j] = v
		}
		m.Params[f[0]] = t
	}
	return m.Verify()
}

func caseTarget(comment string) string {
	for _, line := range strings.Split(comment, "\n") {
		if v, ok := strings.CutPrefix(line, "target: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no golden cases in testdata")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := parseTxtar(data)
			m, err := ir.Decode(a.file("model.json"))
			if err != nil {
				t.Fatalf("model.json: %v", err)
			}
			if err := fillWeights(m, a.file("weights")); err != nil {
				t.Fatalf("weights: %v", err)
			}
			tg, err := targets.Lookup(caseTarget(a.comment))
			if err != nil {
				t.Fatalf("comment: %v", err)
			}
			p, err := codegen.Generate([]*ir.Model{m}, codegen.Options{Target: tg, Module: "golden"})
			if err != nil {
				t.Fatal(err)
			}
			changed := false
			names := []string{"main.go", "model.go"}
			if p.File("kernels_sm90.ptx") != nil {
				names = append(names, "kernels_sm90.ptx")
			}
			for _, name := range names {
				got := p.File(name)
				if bytes.Equal(got, a.file(name)) {
					continue
				}
				if *update {
					a.set(name, got)
					changed = true
					continue
				}
				t.Errorf("%s: generated %s differs from the golden file; run go test ./golden -update and review the diff\n%s",
					path, name, firstDiff(a.file(name), got))
			}
			if changed {
				if err := os.WriteFile(path, a.format(), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("updated %s", path)
			}
			checkBuilds(t, p, tg)
		})
	}
}

// checkBuilds writes the generated module, vets it and builds it.
func checkBuilds(t *testing.T, p *codegen.Program, tg *targets.Target) {
	t.Helper()
	dir := t.TempDir()
	if err := p.Write(dir); err != nil {
		t.Fatal(err)
	}
	bopt := codegen.BuildOptions{Target: tg}
	env, err := bopt.BuildEnv()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"vet"}
	if tg.KernelSet == "go" {
		args = append(args, "-tags", "noasm")
	}
	cmd := exec.Command("go", append(args, "./...")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet: %v\n%s", err, out)
	}
	if _, err := codegen.Build(dir, bopt); err != nil {
		t.Fatal(err)
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(want, got []byte) string {
	wl := strings.Split(string(want), "\n")
	gl := strings.Split(string(got), "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  golden:    %q\n  generated: %q", i+1, w, g)
		}
	}
	return "(lengths differ)"
}
