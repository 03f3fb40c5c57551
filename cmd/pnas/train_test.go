package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search"
)

func trainArgs(spacePath, model, dir string, extra ...string) []string {
	return append([]string{"train", model, "--space", spacePath, "--data", "fashion-mnist-subset",
		"--train-limit", "96", "--held-out", "32", "--batch", "8", "--eval-batch", "16", "--epochs", "2",
		"--bn-images", "32", "--erase", "0.5", "--checkpoint-every", "4", "--seed", "2", "-o", dir}, extra...)
}

// pnas sample writes uniform and random nets of a space; pnas train trains
// one, and a training stopped and resumed writes the same model bytes as an
// uninterrupted one, with a complete log and plot.
func TestSampleTrainResume(t *testing.T) {
	spacePath, _ := tinySetup(t)
	nets := filepath.Join(t.TempDir(), "nets")
	code, out, errs := runCLI(t, "sample", "--space", spacePath, "-n", "2", "--uniform", "k3e3,k7e6", "--seed", "4", "-o", nets)
	if code != 0 {
		t.Fatalf("sample: exit %d: %s", code, errs)
	}
	for _, f := range []string{"tiny-k3e3.json", "tiny-k7e6.json", "tiny-random-0.json", "tiny-random-1.json"} {
		if !strings.Contains(out, filepath.Join(nets, f)) {
			t.Errorf("sample output lacks %s:\n%s", f, out)
		}
	}
	m, err := ir.Load(filepath.Join(nets, "tiny-k7e6.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Metadata.Search.Choices, ","); got != "mbconv k7 e6,mbconv k7 e6,mbconv k7 e6" {
		t.Errorf("uniform k7e6 choices: %s", got)
	}
	// the same seed draws the same random nets
	_, out2, _ := runCLI(t, "sample", "--space", spacePath, "-n", "2", "--seed", "4", "-o", t.TempDir())
	if choiceOf(out, "tiny-random-0.json") != choiceOf(out2, "tiny-random-0.json") || choiceOf(out2, "tiny-random-1.json") == "" {
		t.Errorf("random nets differ with the same seed:\n%s\n%s", out, out2)
	}
	if code, _, errs := runCLI(t, "sample", "--space", spacePath, "--uniform", "k9e9", "-o", t.TempDir()); code == 0 || !strings.Contains(errs, "k9e9") {
		t.Errorf("unknown uniform candidate: exit %d, %s", code, errs)
	}

	model := filepath.Join(nets, "tiny-random-1.json")
	full := filepath.Join(t.TempDir(), "full")
	if code, _, errs := runCLI(t, trainArgs(spacePath, model, full)...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errs)
	}
	split := filepath.Join(t.TempDir(), "split")
	code, out, errs = runCLI(t, trainArgs(spacePath, model, split, "--stop-after", "7")...)
	if code != 0 || !strings.Contains(out, "pnas train --resume "+split) {
		t.Fatalf("train --stop-after: exit %d: %s %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(split, "model.json")); err == nil {
		t.Fatal("a stopped training wrote the model")
	}
	if code, _, errs := runCLI(t, "train", "--resume", split, "--stop-after", "5"); code != 0 {
		t.Fatalf("resume 1: exit %d: %s", code, errs)
	}
	if code, _, errs := runCLI(t, "train", "--resume", split); code != 0 {
		t.Fatalf("resume 2: exit %d: %s", code, errs)
	}
	for _, f := range []string{"model.json", "model.safetensors", "log.jsonl"} {
		a, err1 := os.ReadFile(filepath.Join(full, f))
		b, err2 := os.ReadFile(filepath.Join(split, f))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if f == "log.jsonl" {
			a, b = dropSeconds(a), dropSeconds(b)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between the uninterrupted and the resumed training:\n%s\n%s", f, a, b)
		}
	}
	if n := bytes.Count(must(os.ReadFile(filepath.Join(full, "log.jsonl"))), []byte("\n")); n != 2 {
		t.Errorf("log.jsonl: %d lines, want 2", n)
	}
	if _, err := os.Stat(filepath.Join(full, "training.png")); err != nil {
		t.Error(err)
	}
	tm, err := ir.Load(filepath.Join(full, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tm.Producer != "pnas train" || len(tm.Metadata.Accuracy) != 1 || tm.Metadata.Accuracy[0].Split != "heldout" {
		t.Errorf("trained model: producer %q, accuracy %+v", tm.Producer, tm.Metadata.Accuracy)
	}
	// the trained model trains again, from its weights
	if code, _, errs := runCLI(t, trainArgs(spacePath, filepath.Join(full, "model.json"), filepath.Join(t.TempDir(), "again"), "--init", "--epochs", "1", "--warmup-epochs", "0")...); code != 0 {
		t.Fatalf("train --init: exit %d: %s", code, errs)
	}

	// errors: one line, non-zero, nothing written
	bad := filepath.Join(t.TempDir(), "bad")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{trainArgs(spacePath, smallModel(t), bad), "metadata.search.choices: missing"},
		{trainArgs(spacePath, model, bad, "--epochs", "1", "--warmup-epochs", "1"), "WarmupEpochs: expected fewer than Epochs"},
		{[]string{"train", "--resume", bad}, "not a training run directory"},
		{trainArgs(spacePath, model, full), "already holds a training"},
	} {
		code, _, errs := runCLI(t, tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", tc.args, code, errs, tc.want)
		}
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("a failed training created its run directory")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// choiceOf returns the architecture pnas sample printed for file.
func choiceOf(out, file string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, "\t"); len(f) == 3 && strings.HasSuffix(f[0], file) {
			return f[1]
		}
	}
	return ""
}

// Ctrl-C (SIGINT) stops a training with a checkpoint and exit status 130;
// --resume continues from the step it stopped at.
func TestTrainInterruptSaves(t *testing.T) {
	spacePath, _ := tinySetup(t)
	nets := filepath.Join(t.TempDir(), "nets")
	if code, _, errs := runCLI(t, "sample", "--space", spacePath, "--uniform", "k3e3", "-o", nets); code != 0 {
		t.Fatal(errs)
	}
	dir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(os.Args[0], trainArgs(spacePath, filepath.Join(nets, "tiny-k3e3.json"), dir, "--epochs", "500", "--checkpoint-every", "1000000")...)
	cmd.Env = append(os.Environ(), "PNAS_TEST_MAIN=1")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if b, _ := os.ReadFile(filepath.Join(dir, logFile)); bytes.Count(b, []byte("\n")) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no epoch logged in time:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 || !strings.Contains(buf.String(), "checkpoint saved; continue with: pnas train --resume "+dir) {
		t.Fatalf("after SIGINT: %v, output:\n%s", err, buf.String())
	}
	m := regexp.MustCompile(`stopped at step (\d+) of`).FindStringSubmatch(buf.String())
	if m == nil {
		t.Fatalf("no stop position in:\n%s", buf.String())
	}
	tr, err := search.LoadTrainer(filepath.Join(dir, search.CheckpointFile), search.Placement{})
	if err != nil {
		t.Fatal(err)
	}
	pos := tr.Position()
	tr.Close()
	if fmt.Sprint(pos.WeightSteps) != m[1] {
		t.Fatalf("checkpoint at step %d, the command said %s", pos.WeightSteps, m[1])
	}
	code, out, errs := runCLI(t, "train", "--resume", dir, "--stop-after", "2")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("resuming at epoch %d, step %d of", pos.Epoch, pos.WeightSteps)) {
		t.Fatalf("resume: exit %d: %s\n%s", code, errs, out)
	}
}
