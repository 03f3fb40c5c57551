package runtime_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pnasml/pnas/runtime"
)

// TestDeps enforces that the runtime imports only the standard library and
// golang.org/x/sys/cpu, in every build configuration.
func TestDeps(t *testing.T) {
	for _, env := range [][]string{nil, {"GOARCH=arm64"}, {"GOFLAGS=-tags=noasm"}} {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list %v: %v\n%s", env, err, out)
		}
		for _, p := range strings.Fields(string(out)) {
			if p != "github.com/pnasml/pnas/runtime" && p != "golang.org/x/sys/cpu" {
				t.Errorf("%v: runtime depends on %s; only the standard library and golang.org/x/sys/cpu are allowed", env, p)
			}
		}
	}
}

// TestKernelFiles checks that the file groups cover the package and that
// each group, copied alone with the common files into a fresh module (as a
// generated program does), builds for amd64, amd64 without assembly, and
// arm64; and that FilesForSet leaves out the kernel sets above the chosen
// one and still builds.
func TestKernelFiles(t *testing.T) {
	listed := map[string]bool{"files.go": true, "sources.go": true}
	for _, fs := range runtime.KernelFiles {
		for _, f := range fs {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("KernelFiles lists %s: %v", f, err)
			}
			listed[f] = true
		}
	}
	all, _ := filepath.Glob("*.[gs]*")
	for _, f := range all {
		if !strings.HasSuffix(f, "_test.go") && (strings.HasSuffix(f, ".go") || strings.HasSuffix(f, ".s")) && !listed[f] {
			t.Errorf("%s is in no KernelFiles group", f)
		}
	}
	if _, err := runtime.FilesFor("nonsense"); err == nil {
		t.Error("FilesFor accepted an unknown group")
	}

	sysReq, sysSum := xsysModule(t)
	var groups []string
	for g := range runtime.KernelFiles {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	type unit struct {
		name  string
		files []string
		envs  [][]string
	}
	var units []unit
	for _, g := range groups {
		files, err := runtime.FilesFor(g)
		if err != nil {
			t.Fatal(err)
		}
		units = append(units, unit{"group " + g, files, [][]string{{"GOARCH=amd64"}, {"GOARCH=amd64", "GOFLAGS=-tags=noasm"}, {"GOARCH=arm64"}}})
	}
	// every group at once, with only the kernel sets up to each one
	for _, set := range []string{"go", "avx2", "neon"} {
		files, err := runtime.FilesForSet(set, groups...)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			for _, above := range map[string][]string{"go": {"avx2", "avx512", "neon"}, "avx2": {"avx512", "neon"}, "neon": {"avx2", "avx512"}}[set] {
				if strings.Contains(f, "_"+above+"_") {
					t.Errorf("FilesForSet(%q) has %s", set, f)
				}
			}
		}
		goarch := map[string]string{"go": "amd64", "avx2": "amd64", "neon": "arm64"}[set]
		units = append(units, unit{"kernel set " + set, files, [][]string{{"GOARCH=" + goarch}}})
	}
	all, err := runtime.FilesFor(groups...)
	if err != nil {
		t.Fatal(err)
	}
	all = slices.DeleteFunc(all, func(f string) bool { return strings.Contains(f, "neon") })
	if got, err := runtime.FilesForSet("avx512", groups...); err != nil || !slices.Equal(got, all) {
		t.Errorf("FilesForSet(avx512) = %v, %v; want every file but the arm64 kernel set's", got, err)
	}
	if _, err := runtime.FilesForSet("sse", "pool"); err == nil {
		t.Error("FilesForSet accepted an unknown kernel set")
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for _, u := range units {
		dir := t.TempDir()
		for _, f := range u.files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		mod := "module example.com/prog\n\ngo 1.26.0\n\nrequire " + sysReq + "\n"
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), []byte(sysSum), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, env := range u.envs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				cmd := exec.Command("go", "vet", ".")
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), append(env, "GOPROXY=off", "GOWORK=off")...)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s alone (%v) does not build: %v\n%s", u.name, env, err, out)
				}
			}()
		}
	}
	wg.Wait()
}

// xsysModule returns the golang.org/x/sys requirement and go.sum lines of
// the main module.
func xsysModule(t *testing.T) (req, sum string) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`golang\.org/x/sys (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require golang.org/x/sys")
	}
	req = "golang.org/x/sys " + string(m[1])
	sums, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(sums), "\n") {
		if strings.HasPrefix(l, req+" ") || strings.HasPrefix(l, req+"/go.mod ") {
			sum += l + "\n"
		}
	}
	return req, sum
}
