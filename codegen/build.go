package codegen

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pnasml/pnas/targets"
)

// BuildOptions controls Build.
type BuildOptions struct {
	Target  *targets.Target
	GOOS    string // overrides the target's GOOS (targets that leave it open only)
	GOARCH  string // overrides the target's GOARCH (targets that leave it open only)
	GOAMD64 string // overrides the target's GOAMD64 level
	GoCmd   string // the go command; default "go"
	Output  string // the binary; default DIR/model
}

// BuildEnv returns the environment assignments of the build: the target's
// GOOS, GOARCH and GOAMD64 with the overrides applied, CGO_ENABLED=0, and
// GOFLAGS and GOWORK cleared so that the user's settings cannot pull the
// module into a workspace or vendor mode.
func (o BuildOptions) BuildEnv() ([]string, error) {
	t := o.Target
	if t == nil {
		return nil, fmt.Errorf("codegen: build: no target")
	}
	c := *t
	if o.GOOS != "" {
		if t.GOOS != "" && t.GOOS != o.GOOS {
			return nil, fmt.Errorf("codegen: build: GOOS %s requested, but target %s is for GOOS %s", o.GOOS, t.Name, t.GOOS)
		}
		c.GOOS = o.GOOS
	}
	if o.GOARCH != "" {
		if t.GOARCH != "" && t.GOARCH != o.GOARCH {
			return nil, fmt.Errorf("codegen: build: GOARCH %s requested, but target %s is for GOARCH %s", o.GOARCH, t.Name, t.GOARCH)
		}
		c.GOARCH = o.GOARCH
	}
	if o.GOAMD64 != "" {
		if !slices.Contains([]string{"v1", "v2", "v3", "v4"}, o.GOAMD64) {
			return nil, fmt.Errorf("codegen: build: GOAMD64: expected v1, v2, v3 or v4, got %q", o.GOAMD64)
		}
		c.GOAMD64 = o.GOAMD64
	}
	env := c.BuildEnv()
	goarch := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOARCH="); ok {
			goarch = v
		}
	}
	if goarch != "amd64" {
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GOAMD64=") })
	}
	sets, err := targets.KernelSets()
	if err != nil {
		return nil, err
	}
	for _, ks := range sets {
		if ks.Name == c.KernelSet && ks.GOARCH != "" && ks.GOARCH != goarch {
			return nil, fmt.Errorf("target %s: kernel set %s needs GOARCH %s, building for %s", t.Name, c.KernelSet, ks.GOARCH, goarch)
		}
	}
	return append(env, "GOFLAGS=", "GOWORK=off"), nil
}

// Build compiles the program written in dir with cgo off, -trimpath and
// the kernel set's build tags (presets.json: noasm for "go"), and returns the binary's path. CPU
// programs are static; CUDA programs are linked dynamically against the
// system's C library, through which they load libcuda.so.1 at run time.
// The go command's output is part of the error on failure.
func Build(dir string, o BuildOptions) (string, error) {
	env, err := o.BuildEnv()
	if err != nil {
		return "", err
	}
	out := o.Output
	if out == "" {
		name := "model"
		for _, kv := range env {
			if kv == "GOOS=windows" {
				name += ".exe"
			}
		}
		out = filepath.Join(dir, name)
	}
	if out, err = filepath.Abs(out); err != nil {
		return "", err
	}
	goCmd := o.GoCmd
	if goCmd == "" {
		goCmd = "go"
	}
	args := []string{"build", "-trimpath"}
	ks, err := targets.KernelSets()
	if err != nil {
		return "", err
	}
	for _, k := range ks {
		if k.Name == o.Target.KernelSet && len(k.Tags) > 0 {
			args = append(args, "-tags", strings.Join(k.Tags, ","))
		}
	}
	args = append(args, "-o", out, ".")
	cmd := exec.Command(goCmd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var msg bytes.Buffer
	cmd.Stdout = &msg
	cmd.Stderr = &msg
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build in %s (%s): %v\n%s", dir, strings.Join(env, " "), err, strings.TrimSpace(msg.String()))
	}
	return out, nil
}
