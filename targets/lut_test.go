package targets_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/targets"
)

const (
	keyStem = "Conv-input:28x28x1-output:28x28x16"
	keyMB   = "expanded_conv-input:28x28x16-output:14x14x24-expand:6-kernel:5-stride:2-idskip:0"
	keyHead = "Conv_1-input:7x7x64-output:7x7x256"
)

func smallLUT() *targets.LUT {
	l := table(map[string]float64{keyStem: 41.5, keyMB: 120.25, keyHead: 33})
	l.Correction = &targets.Correction{InterceptUS: 12.5, Scale: 1.1, TypeScale: map[string]float64{"Conv": 1.2}, Lambda: 0.1, Networks: 8}
	return l
}

func TestLUTSaveLoad(t *testing.T) {
	l := smallLUT()
	path := filepath.Join(t.TempDir(), "lut.json")
	if err := l.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := targets.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if len(l.ID()) != 12 || got.ID() != l.ID() {
		t.Errorf("ID %q, after load %q", l.ID(), got.ID())
	}
	if v, ok := got.Lookup(keyMB); !ok || v != 120.25 {
		t.Errorf("Lookup = %v, %v", v, ok)
	}
	if _, ok := got.Lookup("Logits-input:7x7x256-output:10"); ok {
		t.Error("Lookup of a missing key reported ok")
	}
	// Saving again writes identical bytes (sorted keys, no timestamps).
	first, _ := os.ReadFile(path)
	if err := got.Save(path); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if !bytes.Equal(first, second) {
		t.Error("saving the loaded table changed the file")
	}
	var doc map[string]any
	if err := json.Unmarshal(first, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != targets.LUTSchema || doc["id"] != l.ID() {
		t.Errorf("file schema %v id %v", doc["schema"], doc["id"])
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d files after saving, want 1", len(ents))
	}
}

func TestLUTIdentity(t *testing.T) {
	a, b := smallLUT(), smallLUT()
	if a.ID() != b.ID() {
		t.Fatal("equal tables have different IDs")
	}
	b.Machine.CPU = "Other CPU"
	b.GoVersion = "go1.27.0"
	if a.ID() != b.ID() {
		t.Error("provenance changed the ID")
	}
	e := b.Entries[keyMB]
	e.MedianUS += 0.01
	b.Entries[keyMB] = e
	if a.ID() == b.ID() {
		t.Error("a changed entry kept the ID")
	}
	c := smallLUT()
	c.Correction.InterceptUS = 13
	if a.ID() == c.ID() {
		t.Error("a changed correction kept the ID")
	}
}

func TestLUTStrictLoad(t *testing.T) {
	good, err := smallLUT().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	edit := func(old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	cases := []struct {
		name, content, field string
		parts                []string
	}{
		{"hand edit", edit(`"median_us": 120.25`, `"median_us": 100`), "id", []string{"was changed after it was written"}},
		{"schema", edit(`"pnas-lut/1"`, `"pnas-lut/0"`), "schema", []string{`expected "pnas-lut/1", got "pnas-lut/0"`}},
		{"unknown", edit(`"threads": 1`, `"threads": 1, "batch": 1`), "", []string{`unknown field "batch"`}},
		{"entry missing", edit(`"median_us": 120.25`, `"median_uss": 120.25`), `entries["` + keyMB + `"]`, []string{`missing required field "median_us"`}},
		{"type", edit(`"count": 100`, `"count": 1.5`), `entries["` + keyStem + `"].count`, []string{"expected an integer", "got JSON number"}},
		{"negative", edit(`"median_us": 33`, `"median_us": -33`), `entries["` + keyHead + `"].median_us`, []string{"expected a finite number >= 0, got -33"}},
		{"scale", edit(`"scale": 1.1`, `"scale": 0`), "correction.scale", []string{"expected a finite number > 0"}},
		{"truncated", s[:len(s)/2], "", []string{"truncated"}},
		{"trailing", s + "{}", "", []string{"line ", "after top-level value"}},
		{"machine", edit(`"cores": 4`, `"cores": 0`), "machine.cores", []string{"expected a positive integer, got 0"}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".json")
			writeFile(t, path, c.content)
			_, err := targets.Load(path)
			wantErr(t, err, append([]string{path}, c.parts...)...)
			if c.field != "" && fieldOf(err) != c.field {
				t.Errorf("field = %q, want %q (%v)", fieldOf(err), c.field, err)
			}
		})
	}
}

func TestLUTSaveInvalidKeepsOld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lut.json")
	if err := smallLUT().Save(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	bad := smallLUT()
	bad.Entries[keyStem] = targets.Entry{MedianUS: math.NaN(), Count: 1}
	wantErr(t, bad.Save(path), "median_us")
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a failed save changed the file")
	}
	// Saving into a missing directory fails without leaving anything.
	wantErr(t, smallLUT().Save(filepath.Join(t.TempDir(), "no", "lut.json")), "no")
}

func TestBuildLUT(t *testing.T) {
	keys := []string{keyStem, keyMB, keyHead}
	r1 := report("net-a", keys, []float64{40, 100, 30}, 200, 50)
	r2 := report("net-b", keys, []float64{44, 110, 30}, 215, 50)
	r3 := report("net-c", keys[:1], []float64{42}, 60, 100)
	r3.Layers = append(r3.Layers, targets.LayerTiming{Name: "softmax", Ops: []string{"softmax"}, Timing: targets.Timing{MedianNS: 1, P90NS: 2, MeanNS: 1}})
	l, err := targets.BuildLUT("amd64", "synthetic", []*targets.BenchReport{r1, r2, r3})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 3 {
		t.Fatalf("entries = %v", l.Keys())
	}
	stem := l.Entries[keyStem]
	if stem.MedianUS != 42 || stem.Count != 200 {
		t.Errorf("stem entry = %+v, want median 42 (median of 40, 44, 42), count 200", stem)
	}
	// Pooled mean over runs: (50*40.4 + 50*44.44 + 100*42.42)/200.
	if want := (50*40.4 + 50*44.44 + 100*42.42) / 200; !approx(stem.MeanUS, want, 1e-12) {
		t.Errorf("stem mean = %v, want %v", stem.MeanUS, want)
	}
	if mb := l.Entries[keyMB]; mb.MedianUS != 105 || mb.Count != 100 {
		t.Errorf("mbconv entry = %+v, want median 105 count 100", mb)
	}
	if l.Machine != (targets.Machine{CPU: "Test CPU @ 3.0GHz", Cores: 4}) || l.KernelSet != "avx2" || l.Threads != 1 || l.Correction != nil {
		t.Errorf("provenance = %+v", l)
	}
	if len(l.Sources) != 3 {
		t.Errorf("sources = %v", l.Sources)
	}
	if err := l.Save(filepath.Join(t.TempDir(), "lut.json")); err != nil {
		t.Fatal(err)
	}

	other := report("net-d", keys, []float64{1, 2, 3}, 10, 5)
	other.CPU = "Another CPU"
	_, err = targets.BuildLUT("amd64", "synthetic", []*targets.BenchReport{r1, other})
	wantErr(t, err, "bench report 1", "one table describes one machine")
	_, err = targets.BuildLUT("amd64-avx512", "synthetic", []*targets.BenchReport{r1})
	wantErr(t, err, "bench report 0", `target: expected "amd64-avx512", got "amd64"`)
	_, err = targets.BuildLUT("amd64", "synthetic", nil)
	wantErr(t, err, "no bench reports")
}
