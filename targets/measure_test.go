package targets_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/targets"
)

func record(t *testing.T, model string) *targets.Measurement {
	t.Helper()
	r, err := targets.ParseBench([]byte(benchJSON))
	if err != nil {
		t.Fatal(err)
	}
	r.Model = model
	return &targets.Measurement{
		Schema: targets.MeasureSchema, Time: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Machine: targets.Machine{CPU: r.CPU, Cores: r.Cores}, GoVersion: r.GoVersion,
		BinarySHA256: strings.Repeat("ab", 32), Commit: "3f2a9c1", Target: r.Target, Report: r,
	}
}

func TestMeasurementLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "measurements.jsonl")
	a, b, c := record(t, "net-a"), record(t, "net-b"), record(t, "net-c")
	if err := targets.AppendMeasurements(path, a, b); err != nil {
		t.Fatal(err)
	}
	if err := targets.AppendMeasurements(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := targets.ReadMeasurements(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*targets.Measurement{a, b, c}, got); diff != "" {
		t.Fatalf("read back (-want +got):\n%s", diff)
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 3 {
		t.Errorf("log has %d lines, want 3", n)
	}
	if rs := targets.Reports(got); len(rs) != 3 || rs[2].Model != "net-c" {
		t.Errorf("Reports = %v", rs)
	}

	// Another target is refused on append and on read.
	d := record(t, "net-d")
	d.Target, d.Report.Target = "generic", "generic"
	wantErr(t, targets.AppendMeasurements(path, d), "record 0", `target: expected "amd64"`, "one log per target")
	line, _ := json.Marshal(d)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "%s\n", line)
	f.Close()
	_, err = targets.ReadMeasurements(path)
	wantErr(t, err, path+":4", `expected "amd64" (the log's target, line 1), got "generic"`)
}

func TestMeasurementValidation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	mismatch := record(t, "x")
	mismatch.Report.Target = "generic"
	wantErr(t, targets.AppendMeasurements(path, mismatch), "report.target", `expected "amd64" (the record's target), got "generic"`)
	badHash := record(t, "x")
	badHash.BinarySHA256 = "abc"
	wantErr(t, targets.AppendMeasurements(path, badHash), "binary_sha256", "64 lower-case hex digits")
	badReport := record(t, "x")
	badReport.Report.Runs = 0
	wantErr(t, targets.AppendMeasurements(path, badReport), "report.runs", "expected a positive integer")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("rejected records created the log")
	}
}

func TestReadMeasurementsErrors(t *testing.T) {
	good, _ := json.Marshal(record(t, "ok"))
	g := string(good)
	edit := func(old, new string) string {
		if !strings.Contains(g, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(g, old, new, 1)
	}
	cases := []struct {
		name, content string
		parts         []string
	}{
		{"truncated last line", g + "\n" + g[:100], []string{":2", "truncated record", "no newline"}},
		{"truncated inside", g + "\n" + g[:100] + "\n", []string{":2", "truncated"}},
		{"schema", g + "\n" + edit(`"pnas-measure/1"`, `"pnas-measure/9"`) + "\n", []string{":2", `schema: expected "pnas-measure/1", got "pnas-measure/9"`}},
		{"report schema", edit(`"pnas-bench/1"`, `"pnas-bench/0"`) + "\n", []string{":1", `report.schema: expected "pnas-bench/1", got "pnas-bench/0"`}},
		{"report field", edit(`"warmup":20,`, ``) + "\n", []string{":1", `report: missing required field "warmup"`}},
		{"unknown", edit(`"commit":"3f2a9c1"`, `"commit":"3f2a9c1","host":"x"`) + "\n", []string{":1", `unknown field "host"`}},
		{"missing", edit(`"binary_sha256":"`+strings.Repeat("ab", 32)+`",`, ``) + "\n", []string{":1", `missing required field "binary_sha256"`}},
		{"machine", edit(`"cores":2}`, `"cores":3}`) + "\n", []string{":1", "report.cpu", "the record's machine"}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".jsonl")
			writeFile(t, path, c.content)
			_, err := targets.ReadMeasurements(path)
			wantErr(t, err, append([]string{path}, c.parts...)...)
		})
	}
	// Blank lines are skipped.
	path := filepath.Join(dir, "blank.jsonl")
	writeFile(t, path, "\n"+g+"\n\n"+g+"\n")
	if got, err := targets.ReadMeasurements(path); err != nil || len(got) != 2 {
		t.Errorf("blank lines: %d records, %v", len(got), err)
	}
	// Appending after an incomplete last line is refused.
	path = filepath.Join(dir, "torn.jsonl")
	writeFile(t, path, g+"\n"+g[:50])
	wantErr(t, targets.AppendMeasurements(path, record(t, "x")), path, "last line is incomplete")
}

func TestConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var recs []*targets.Measurement
			for j := range 5 {
				recs = append(recs, record(t, fmt.Sprintf("w%d-%d", i, j)))
			}
			errs <- targets.AppendMeasurements(path, recs...)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := targets.ReadMeasurements(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 40 {
		t.Fatalf("read %d records, want 40", len(got))
	}
}

func TestNewMeasurement(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "model")
	writeFile(t, bin, "hello")
	r, _ := targets.ParseBench([]byte(benchJSON))
	m, err := targets.NewMeasurement(r, bin, "")
	if err != nil {
		t.Fatal(err)
	}
	// sha256("hello")
	if m.BinarySHA256 != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Errorf("binary_sha256 = %s", m.BinarySHA256)
	}
	if m.Target != "amd64" || m.Machine.CPU != r.CPU || m.Time.IsZero() {
		t.Errorf("record = %+v", m)
	}
}
