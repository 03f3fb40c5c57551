package targets_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/pnasml/pnas/targets"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const userTarget = `{
  "schema": "pnas-target/1",
  "name": "lab/epyc",
  "goos": "linux",
  "goarch": "amd64",
  "goamd64": "v3",
  "features": ["avx2", "fma", "bmi2"],
  "kernel_set": "avx2",
  "threads": 2,
  "lut": "epyc-lut.json",
  "description": "lab server"
}`

func TestPresets(t *testing.T) {
	t.Setenv(targets.EnvDirs, "")
	all, err := targets.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range all {
		names = append(names, tg.Name)
		if !tg.Builtin() {
			t.Errorf("%s: Source = %q, want builtin", tg.Name, tg.Source)
		}
		if err := tg.Validate(); err != nil {
			t.Errorf("%s: %v", tg.Name, err)
		}
	}
	if want := []string{"amd64", "amd64-avx512", "arm64", "arm64/cortex-a72", "arm64/cortex-a76",
		"arm64/neoverse-n1", "arm64/neoverse-v1", "generic", "cuda"}; !slices.Equal(names, want) {
		t.Fatalf("presets = %v, want %v", names, want)
	}
	a, err := targets.Lookup("amd64")
	if err != nil {
		t.Fatal(err)
	}
	if a.GOARCH != "amd64" || a.GOAMD64 != "v3" || a.KernelSet != "avx2" || a.Threads != 1 ||
		!slices.Contains(a.Features, "avx2") || !slices.Contains(a.Features, "fma") {
		t.Errorf("amd64 preset = %+v", a)
	}
	v4, _ := targets.Lookup("amd64-avx512")
	if v4.GOAMD64 != "v4" || v4.KernelSet != "avx512" || !slices.Contains(v4.Features, "avx512f") {
		t.Errorf("amd64-avx512 preset = %+v", v4)
	}
	for _, name := range names[2:7] {
		a, _ := targets.Lookup(name)
		if a.GOOS != "linux" || a.GOARCH != "arm64" || a.KernelSet != "neon" || !slices.Equal(a.Features, []string{"asimd"}) {
			t.Errorf("%s preset = %+v", name, a)
		}
		if want := map[bool]int{true: 1, false: 4}[name == "arm64"]; a.Threads != want {
			t.Errorf("%s preset: %d threads, want %d", name, a.Threads, want)
		}
	}
	g, _ := targets.Lookup("generic")
	if g.GOARCH != "" || g.KernelSet != "go" || len(g.Features) != 0 {
		t.Errorf("generic preset = %+v", g)
	}
	// Lookup returns copies: mutating one does not change the next.
	a.Features[0] = "sse2"
	b, _ := targets.Lookup("amd64")
	if b.Features[0] == "sse2" {
		t.Error("Lookup returned shared state")
	}
	sets, err := targets.KernelSets()
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, k := range sets {
		ks = append(ks, k.Name)
	}
	if want := []string{"go", "avx2", "avx512", "neon", "cuda"}; !slices.Equal(ks, want) {
		t.Errorf("kernel sets = %v, want %v", ks, want)
	}
	cu, _ := targets.Lookup("cuda")
	if cu.DeviceKind() != targets.DeviceCUDA || cu.KernelSet != "cuda" || cu.GOOS != "linux" || cu.GOARCH != "amd64" {
		t.Errorf("cuda preset = %+v", cu)
	}
	if g.DeviceKind() != targets.DeviceCPU {
		t.Errorf("generic preset's device = %q", g.DeviceKind())
	}
}

func TestUserTargets(t *testing.T) {
	t.Setenv(targets.EnvDirs, "")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "epyc.json"), userTarget)
	writeFile(t, filepath.Join(dir, "notes.txt"), "not a target")
	tg, err := targets.Lookup("lab/epyc", dir)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Source != filepath.Join(dir, "epyc.json") || tg.Threads != 2 || tg.GOOS != "linux" {
		t.Errorf("user target = %+v", tg)
	}
	all, err := targets.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 10 || all[9].Name != "lab/epyc" {
		t.Errorf("List = %d targets, last %q", len(all), all[len(all)-1].Name)
	}

	// The same directory through the environment.
	t.Setenv(targets.EnvDirs, dir)
	if _, err := targets.Lookup("lab/epyc"); err != nil {
		t.Fatalf("via $%s: %v", targets.EnvDirs, err)
	}
}

func TestLookupUnknown(t *testing.T) {
	t.Setenv(targets.EnvDirs, "")
	_, err := targets.Lookup("riscv64")
	wantErr(t, err, `unknown target "riscv64"`, "amd64, amd64-avx512, arm64, arm64/cortex-a72")
	_, err = targets.Lookup("amd64", filepath.Join(t.TempDir(), "missing"))
	wantErr(t, err, "target directory", "missing")
}

func TestMalformedTargetFiles(t *testing.T) {
	t.Setenv(targets.EnvDirs, "")
	edit := func(old, new string) string {
		if !strings.Contains(userTarget, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(userTarget, old, new, 1)
	}
	cases := []struct {
		name, content, field string
		parts                []string
	}{
		{"syntax", `{"schema": "pnas-target/1", "name": }`, "", []string{"invalid JSON", "line 1"}},
		{"truncated", userTarget[:80], "", []string{"truncated"}},
		{"schema", edit(`"pnas-target/1"`, `"pnas-target/2"`), "schema", []string{`expected "pnas-target/1", got "pnas-target/2"`}},
		{"unknown field", edit(`"threads": 2`, `"threads": 2, "cores": 8`), "", []string{`unknown field "cores"`}},
		{"wrong type", edit(`"threads": 2`, `"threads": "two"`), "threads", []string{"expected an integer, got JSON string"}},
		{"missing", edit(`"kernel_set": "avx2",`, ``), "", []string{`missing required field "kernel_set"`}},
		{"goarch", edit(`"goarch": "amd64"`, `"goarch": "x86"`), "goarch", []string{`got "x86"`, "amd64"}},
		{"goamd64", edit(`"goamd64": "v3"`, `"goamd64": "v5"`), "goamd64", []string{"expected v1, v2, v3 or v4", `got "v5"`}},
		{"feature", edit(`"bmi2"`, `"neon"`), "features[2]", []string{`expected a feature of goarch amd64`, `got "neon"`}},
		{"kernel set", edit(`"kernel_set": "avx2"`, `"kernel_set": "sve"`), "kernel_set", []string{"expected one of go, avx2, avx512, neon, cuda", `got "sve"`}},
		{"kernel arch neon", edit(`"kernel_set": "avx2"`, `"kernel_set": "neon"`), "kernel_set", []string{`kernel set "neon" runs on goarch arm64 only`}},
		{"device", edit(`"threads": 2`, `"threads": 2, "device": "tpu"`), "device", []string{`expected empty, "cpu" or "cuda", got "tpu"`}},
		{"kernel device", edit(`"kernel_set": "avx2"`, `"kernel_set": "cuda"`), "kernel_set", []string{`kernel set "cuda" runs on device cuda, but the target's device is cpu`}},
		{"kernel features", edit(`"kernel_set": "avx2"`, `"kernel_set": "avx512"`), "features", []string{`kernel set "avx512" executes avx512f`}},
		{"kernel arch", edit(`"goarch": "amd64",
  "goamd64": "v3",
  "features": ["avx2", "fma", "bmi2"]`, `"goarch": "arm64", "goamd64": "", "features": ["asimd"]`), "kernel_set", []string{`runs on goarch amd64 only`}},
		{"threads", edit(`"threads": 2`, `"threads": 0`), "threads", []string{"expected a positive integer, got 0"}},
		{"name", edit(`"lab/epyc"`, `"Lab Epyc"`), "name", []string{`got "Lab Epyc"`}},
		{"duplicate preset", edit(`"lab/epyc"`, `"amd64"`), "name", []string{`target "amd64" is already defined by builtin`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "bad.json")
			writeFile(t, file, c.content)
			_, err := targets.Lookup("amd64", dir)
			wantErr(t, err, append([]string{file}, c.parts...)...)
			if c.field != "" && fieldOf(err) != c.field {
				t.Errorf("field = %q, want %q (%v)", fieldOf(err), c.field, err)
			}
		})
	}
	// Two files defining the same name.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.json"), userTarget)
	writeFile(t, filepath.Join(dir, "b.json"), userTarget)
	_, err := targets.List(dir)
	wantErr(t, err, "b.json", "already defined by", "a.json")
}

func TestSupports(t *testing.T) {
	t.Setenv(targets.EnvDirs, "")
	g, _ := targets.Lookup("generic")
	if err := g.HostSupports(); err != nil {
		t.Errorf("generic on this host: %v", err)
	}
	other := &targets.Target{Name: "x", GOARCH: "riscv64", KernelSet: "go", Threads: 1}
	if runtime.GOARCH != "riscv64" {
		wantErr(t, other.HostSupports(), "GOARCH riscv64", "this host is "+runtime.GOARCH)
	}
	a, _ := targets.Lookup("amd64-avx512")
	err := a.HostSupports()
	if runtime.GOARCH != "amd64" && err == nil {
		t.Error("amd64-avx512 accepted on a non-amd64 host")
	}
	// Fake hosts through the exported test hook.
	only := func(fs ...string) func(string) bool {
		return func(f string) bool { return slices.Contains(fs, f) }
	}
	v3 := []string{"cx16", "lahf", "popcnt", "sse3", "sse41", "sse42", "ssse3", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "osxsave"}
	amd, _ := targets.Lookup("amd64")
	if err := targets.SupportsOn(amd, "linux", "amd64", only(v3...)); err != nil {
		t.Errorf("amd64 on a v3 host: %v", err)
	}
	wantErr(t, targets.SupportsOn(a, "linux", "amd64", only(v3...)), "lacks avx512f, avx512bw, avx512cd, avx512dq, avx512vl", "GOAMD64=v4")
	wantErr(t, targets.SupportsOn(amd, "linux", "amd64", only(v3[:10]...)), "lacks", "fma")
	linux := &targets.Target{Name: "l", GOOS: "linux", KernelSet: "go", Threads: 1}
	wantErr(t, targets.SupportsOn(linux, "darwin", "arm64", only()), "GOOS linux", "darwin")
}

func TestBuildEnv(t *testing.T) {
	t.Setenv(targets.EnvDirs, "")
	a, _ := targets.Lookup("amd64")
	env := a.BuildEnv()
	want := []string{"GOOS=" + runtime.GOOS, "GOARCH=amd64", "GOAMD64=v3", "CGO_ENABLED=0"}
	if !slices.Equal(env, want) {
		t.Errorf("BuildEnv = %v, want %v", env, want)
	}
	g, _ := targets.Lookup("generic")
	if env := g.BuildEnv(); !slices.Equal(env, []string{"GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH, "CGO_ENABLED=0"}) {
		t.Errorf("generic BuildEnv = %v", env)
	}
}

func TestTargetLoadLUT(t *testing.T) {
	t.Setenv(targets.EnvDirs, "")
	// the built-in amd64 presets carry embedded fmnist tables; generic has none
	for _, name := range []string{"amd64", "amd64-avx512"} {
		a, _ := targets.Lookup(name)
		l, err := a.LoadLUT()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if l.Target != name || l.Space != "fmnist" || l.Correction == nil || len(l.Entries) < 50 {
			t.Errorf("%s: embedded table: target %q, space %q, %d entries, correction %v", name, l.Target, l.Space, len(l.Entries), l.Correction)
		}
	}
	g, _ := targets.Lookup("generic")
	wantErr(t, func() error { _, err := g.LoadLUT(); return err }(), `target "generic" has no latency table`)

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "epyc.json"), userTarget)
	tg, err := targets.Lookup("lab/epyc", dir)
	if err != nil {
		t.Fatal(err)
	}
	l := table(map[string]float64{"Conv-input:28x28x1-output:28x28x16": 40})
	l.Target, l.Threads = "lab/epyc", 2
	if err := l.Save(filepath.Join(dir, "epyc-lut.json")); err != nil {
		t.Fatal(err)
	}
	got, err := tg.LoadLUT()
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != l.ID() {
		t.Errorf("loaded table %s, saved %s", got.ID(), l.ID())
	}
	// A table for other settings is refused.
	l.Threads = 1
	if err := l.Save(filepath.Join(dir, "epyc-lut.json")); err != nil {
		t.Fatal(err)
	}
	_, err = tg.LoadLUT()
	wantErr(t, err, "epyc-lut.json", "threads: expected 2 (target lab/epyc), got 1")
}

func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/pnasml/pnas/targets": true, "github.com/pnasml/pnas/ir": true, "github.com/pnasml/pnas/internal/atomicfile": true,
		"github.com/pnasml/pnas/search/space": true, "github.com/pnasml/pnas/internal/archnet": true,
		"golang.org/x/sys/cpu": true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("package targets depends on %s; it may import only the standard library, golang.org/x/sys/cpu, ir, internal/atomicfile, search/space and internal/archnet", p)
		}
	}
}

// TestFindCUDADriver checks where a CUDA target looks for the driver.
func TestFindCUDADriver(t *testing.T) {
	dir := t.TempDir()
	if err := targets.FindCUDADriver(dir); err != nil && !strings.Contains(err.Error(), "no CUDA driver: libcuda.so.1 not found") {
		t.Errorf("empty directory: %v", err)
	}
	writeFile(t, filepath.Join(dir, "libcuda.so.1"), "")
	if err := targets.FindCUDADriver("/nonexistent" + string(filepath.ListSeparator) + dir); err != nil {
		t.Errorf("libcuda.so.1 in LD_LIBRARY_PATH: %v", err)
	}
}
