package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/targets"
)

// readmeStep is one command of the README's loop with the quick flags its
// README comment gives it.
type readmeStep struct {
	line  int    // in README.md
	cmd   string // as written, without a trailing comment
	quick string // flags to add for a quick run
}

// readmeLoop extracts the shell block of the README section "The loop,
// command by command": every non-comment line is a command; a comment line
// "quick: FLAGS" gives flags for the next command.
func readmeLoop(t *testing.T, readme string) []readmeStep {
	t.Helper()
	_, sec, ok := strings.Cut(readme, "## The loop, command by command")
	if !ok {
		t.Fatal("README.md has no section \"The loop, command by command\"")
	}
	head := strings.Count(readme[:len(readme)-len(sec)], "\n")
	_, block, ok := strings.Cut(sec, "```sh\n")
	if !ok {
		t.Fatal("the loop section has no ```sh block")
	}
	head += strings.Count(sec[:len(sec)-len(block)], "\n")
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("the loop's ```sh block is not closed")
	}
	var (
		steps []readmeStep
		quick string
	)
	for i, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case strings.HasPrefix(l, "#"):
			if _, q, ok := strings.Cut(l, "quick:"); ok {
				quick = strings.TrimSpace(q)
			}
		default:
			if j := strings.Index(l, "   #"); j >= 0 { // a trailing comment
				l = strings.TrimSpace(l[:j])
			}
			steps = append(steps, readmeStep{line: head + i + 1, cmd: l, quick: quick})
			quick = ""
		}
	}
	return steps
}

// withQuick adds the quick flags to a command, before any redirection.
func (s readmeStep) withQuick() string {
	if s.quick == "" {
		return s.cmd
	}
	if i := strings.IndexAny(s.cmd, "<>|"); i >= 0 {
		return strings.TrimSpace(s.cmd[:i]) + " " + s.quick + " " + s.cmd[i:]
	}
	return s.cmd + " " + s.quick
}

// TestREADMELoop runs the README's loop command by command as written (with
// the quick flags the README gives), from a directory that looks like the
// repository root (data/ is there) with pnas on the PATH, so that the front
// page cannot drift from the program: every command must succeed, and the
// files the loop promises must be there at the end.
func TestREADMELoop(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := readmeLoop(t, string(b))
	if len(steps) < 8 {
		t.Fatalf("the README loop has %d commands, expected the whole loop (profile ... calibrate)", len(steps))
	}
	work := t.TempDir()
	repoData, err := filepath.Abs("../../data")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(repoData, filepath.Join(work, "data")); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Dir(pnasWrapper(t))
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", s.withQuick())
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("README.md:%d: %s\n(run as: %s)\n%v\n%s", s.line, s.cmd, s.withQuick(), err, tail(out, 3000))
		}
		t.Logf("README.md:%d: %s: ok", s.line, s.cmd)
	}

	// what the loop promises
	for _, f := range []string{"lut.json", "runs/fm/model.json", "runs/fm/model.safetensors", "runs/fm/log.jsonl", "runs/fm/arch.png", "out/fm/model", "m.json", "measurements.jsonl"} {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil {
			t.Errorf("after the loop: %v", err)
		}
	}
	if _, err := ir.Load(filepath.Join(work, "runs/fm/model.json")); err != nil {
		t.Error(err)
	}
	if recs, err := targets.ReadMeasurements(filepath.Join(work, "measurements.jsonl")); err != nil || len(recs) != 1 {
		t.Errorf("measurements.jsonl: %d records (%v), want the one of m.json", len(recs), err)
	}
}

// pnasWrapper writes an executable "pnas" that runs this test binary as
// the pnas command (PNAS_TEST_MAIN=1, see TestMain) and returns its path.
func pnasWrapper(t *testing.T) string {
	t.Helper()
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\nPNAS_TEST_MAIN=1 exec '" + self + "' \"$@\"\n"
	p := filepath.Join(bin, "pnas")
	if err := os.WriteFile(p, []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
