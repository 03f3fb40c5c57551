package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/pnasml/pnas/data"
)

// dirFiles reads every file of dir.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

var secondsField = regexp.MustCompile(`"seconds":[^,}]*`)

// A run directory stopped twice and resumed writes the same log, alpha
// history and final checkpoint as an uninterrupted run; a resume that fails
// leaves the directory byte-identical; a directory that holds a run is not
// started again.
func TestRunDirResume(t *testing.T) {
	cfg := testConfig()
	cfg.WarmupEpochs, cfg.SearchEpochs, cfg.TrainEpochs = 1, 2, 1
	cfg.ArchEvery, cfg.ArchSkipEpoch0 = 2, false
	cfg.LatencyLoss, cfg.TargetLatency, cfg.Seed = LossMulLog, 30, 7
	p := mustPlan(t, tinySpace("k3e3", "k5e6", "zero"))
	d := Data{Train: synthDataset(p, 40, 1), Held: synthDataset(p, 16, 2), Norm: data.Normalization{Mean: []float32{0.5}, Std: []float32{0.25}}}
	tab := MACTable(p, 1000)
	opt := RunOptions{CheckpointEvery: 3}

	start := func(dir string) *RunDir {
		s, err := New(p, cfg, tab)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		rd, err := CreateRun(dir, RunSettings{Args: []byte(`{"x":1}`)}, s)
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	resume := func(dir string, stopAfter int) error {
		rd, err := OpenRun(dir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := rd.Resume(tab, Placement{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		o := opt
		o.StopAfter = stopAfter
		return rd.Run(context.Background(), s, d, o)
	}

	full := filepath.Join(t.TempDir(), "full")
	start(full)
	if err := resume(full, 0); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(t.TempDir(), "part")
	start(part)
	for _, stop := range []int{7, 6} { // inside epoch 1, then inside epoch 2
		if err := resume(part, stop); !errors.Is(err, ErrStopped) {
			t.Fatalf("stop after %d: %v, want ErrStopped", stop, err)
		}
	}
	if err := resume(part, 0); err != nil {
		t.Fatal(err)
	}
	a, b := dirFiles(t, full), dirFiles(t, part)
	for _, f := range []string{LogFile, AlphaFile, CheckpointFile} {
		x, y := a[f], b[f]
		if f == LogFile {
			x, y = secondsField.ReplaceAll(x, nil), secondsField.ReplaceAll(y, nil)
		}
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s: %d bytes in the uninterrupted run, %d in the stopped and resumed one; want the same bytes", f, len(x), len(y))
		}
	}
	rd, err := OpenRun(part)
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := rd.Epochs(); err != nil || len(recs) != 4 {
		t.Errorf("log: %d epochs (%v), want 4", len(recs), err)
	}
	var args bytes.Buffer
	json.Compact(&args, rd.Settings.Args)
	if args.String() != `{"x":1}` || rd.Settings.Table != tab.ID() || rd.Settings.Space == nil {
		t.Errorf("settings not kept: %+v", rd.Settings)
	}

	// a resume against another table fails and changes nothing
	before := dirFiles(t, part)
	other := MACTable(p, 2000)
	other.Name = "other"
	if _, err := rd.Resume(other, Placement{}); err == nil {
		t.Fatal("resume with another latency table succeeded")
	}
	// a new run in a run directory fails and changes nothing
	s, err := New(p, cfg, tab)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := CreateRun(part, RunSettings{}, s); err == nil {
		t.Fatal("CreateRun over a run succeeded")
	}
	after := dirFiles(t, part)
	if len(after) != len(before) {
		t.Errorf("failed resume: %d files, want %d", len(after), len(before))
	}
	for f, x := range before {
		if !bytes.Equal(x, after[f]) {
			t.Errorf("failed resume changed %s", f)
		}
	}
}
