package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
)

// A search interrupted and resumed derives the same architecture and
// bit-identical weights, logs and alpha trace as an uninterrupted run, and
// its outputs are complete. Interruptions: two deterministic stops
// (--stop-after, one inside the first epoch and one across an epoch
// boundary), and a SIGKILL at a random moment while the search runs.
func TestSearchKillResume(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	base := t.TempDir()

	full := filepath.Join(base, "full")
	start := time.Now()
	code, out, errs := runCLI(t, searchArgs(spacePath, lutPath, full)...)
	fullTime := time.Since(start)
	if code != 0 {
		t.Fatalf("search failed (%d): %s\n%s", code, errs, out)
	}
	for _, f := range []string{"model.json", "model.safetensors", "log.jsonl", "alpha.jsonl", "checkpoint.bin", "search.json", "alpha.png", "arch.png", "latency-accuracy.png"} {
		if _, err := os.Stat(filepath.Join(full, f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}
	var recs []struct{ Warmup, Train bool }
	logData, err := os.ReadFile(filepath.Join(full, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(logData)), "\n") {
		var r struct{ Warmup, Train bool }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log.jsonl: %v in %q", err, line)
		}
		recs = append(recs, r)
	}
	if len(recs) != 4 {
		t.Fatalf("log.jsonl: %d epochs, want 4", len(recs))
	}
	if recs[2].Train || !recs[3].Train || !recs[0].Warmup {
		t.Errorf("log.jsonl: epochs marked warm-up %v %v %v %v, train %v %v %v %v; want warm-up, search, search, train",
			recs[0].Warmup, recs[1].Warmup, recs[2].Warmup, recs[3].Warmup, recs[0].Train, recs[1].Train, recs[2].Train, recs[3].Train)
	}
	m, err := ir.Load(filepath.Join(full, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata.Search == nil || m.Metadata.Search.LatencyTable == "" || len(m.Metadata.Search.Alpha) != 3 {
		t.Fatalf("derived model lacks provenance: %+v", m.Metadata.Search)
	}
	if _, err := interp.Run(m, make([]float32, 28*28), 1); err != nil {
		t.Fatalf("derived model does not run in the interpreter: %v", err)
	}

	// sameAsFull resumes dir to the end and compares it with the
	// uninterrupted run.
	sameAsFull := func(t *testing.T, dir string) {
		t.Helper()
		code, out, errs := runCLI(t, "search", "--resume", dir)
		if code != 0 {
			t.Fatalf("resume failed (%d): %s\n%s", code, errs, out)
		}
		if !strings.Contains(out, "resuming at epoch") {
			t.Errorf("resume output lacks the position:\n%s", out)
		}
		for _, f := range []string{"model.safetensors", "log.jsonl", "alpha.jsonl"} {
			a, _ := os.ReadFile(filepath.Join(full, f))
			b, _ := os.ReadFile(filepath.Join(dir, f))
			if f == "log.jsonl" {
				a, b = dropSeconds(a), dropSeconds(b)
			}
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("%s differs between the uninterrupted and the interrupted-and-resumed run", f)
			}
		}
		mk, err := ir.Load(filepath.Join(dir, "model.json"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(mk.Metadata.Search.Choices, ",") != strings.Join(m.Metadata.Search.Choices, ",") {
			t.Errorf("architectures differ: %v vs %v", mk.Metadata.Search.Choices, m.Metadata.Search.Choices)
		}
	}

	t.Run("stop-after", func(t *testing.T) {
		// 8 weight steps an epoch, 32 in all: stop at step 5 (inside
		// epoch 0, between checkpoints) and at step 11 (in epoch 1).
		dir := filepath.Join(base, "stopped")
		for i, args := range [][]string{
			searchArgs(spacePath, lutPath, dir, "--stop-after", "5"),
			{"search", "--resume", dir, "--stop-after", "6"},
		} {
			code, out, errs := runCLI(t, args...)
			want := []string{"stopped at step 5 of 32", "stopped at step 11 of 32"}[i]
			if code != 0 || !strings.Contains(out, want) {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q; want exit 0 and %q", args, code, out, errs, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "model.json")); err == nil {
				t.Fatalf("a stopped search wrote model.json")
			}
		}
		sameAsFull(t, dir)
	})

	t.Run("kill", func(t *testing.T) {
		// Kill once the run is under way (its first checkpoint and its
		// settings are on disk), after a random delay of up to the time the whole
		// uninterrupted search took, so that the kill can land anywhere
		// from the first epoch to the writing of the outputs. Should the
		// search finish within the delay, try again with a shorter one;
		// a run that cannot be interrupted fails the test.
		seed := uint64(time.Now().UnixNano())
		rng := rand.New(rand.NewPCG(seed, 1))
		maxDelay := fullTime
		for attempt := 1; ; attempt++ {
			dir := filepath.Join(base, "killed", string(rune('a'+attempt)))
			delay := time.Duration(rng.Int64N(int64(maxDelay)))
			if killSearch(t, searchArgs(spacePath, lutPath, dir), dir, delay) {
				t.Logf("killed %v after search.json was written (attempt %d, seed %d; the whole search took %v)", delay, attempt, seed, fullTime)
				sameAsFull(t, dir)
				return
			}
			if attempt == 4 {
				t.Fatalf("the search finished before each of %d kills (last delay %v, seed %d)", attempt, delay, seed)
			}
			maxDelay /= 4
		}
	})
}

// killSearch starts pnas with args as a separate process, waits until dir
// holds a checkpoint, sleeps for delay and kills the process with SIGKILL.
// It reports whether the process died of the kill before finishing the
// search.
func killSearch(t *testing.T, args []string, dir string, delay time.Duration) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PNAS_TEST_MAIN=1")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for {
		// search.json is written after the first checkpoint and makes
		// the directory a run: killed before it, the directory is not
		// one and --resume rightly refuses it.
		if _, err := os.Stat(filepath.Join(dir, "search.json")); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the search exited (%v) before its first checkpoint:\n%s", err, buf.String())
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			t.Fatalf("no checkpoint written in 2 minutes:\n%s", buf.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	time.Sleep(delay)
	cmd.Process.Kill()
	<-exited
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		if !cmd.ProcessState.Success() {
			t.Fatalf("the search failed before it was killed (%v):\n%s", cmd.ProcessState, buf.String())
		}
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "model.json"))
	return err != nil
}

// dropSeconds removes the wall-clock field from log lines.
func dropSeconds(b []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.Index(l, `"seconds":`); i >= 0 {
			l = l[:i]
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}
