package targets

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/pnasml/pnas/internal/atomicfile"
)

// LUTSchema is the "schema" value of a latency-table file.
const LUTSchema = "pnas-lut/1"

// Machine identifies the computer a measurement was taken on.
type Machine struct {
	CPU   string `json:"cpu"`   // CPU model name
	Cores int    `json:"cores"` // logical CPUs
}

// Entry is the measured latency of one latency-table key, in microseconds.
type Entry struct {
	MeanUS   float64 `json:"mean_us"`   // mean over all runs
	VarUS2   float64 `json:"var_us2"`   // variance over all runs, µs²
	Count    int     `json:"count"`     // runs the entry summarises
	MedianUS float64 `json:"median_us"` // median of the per-report medians; what Lookup returns
}

// LUT is a latency table: the measured latency of every block key of a
// search space on one target, plus the correction that turns a sum of
// entries into a whole-network prediction. LUTs are derived from
// measurements (BuildLUT, Calibrate), never written by hand; the file's id
// is a hash of its content, checked on Load.
type LUT struct {
	Target     string           `json:"target"`               // target name
	Space      string           `json:"space"`                // search space the keys come from
	Machine    Machine          `json:"machine"`              // where it was measured
	GoVersion  string           `json:"go_version"`           // toolchain of the measured programs (sorted, comma-joined if several)
	KernelSet  string           `json:"kernel_set"`           // kernel set of the measured programs
	Threads    int              `json:"threads"`              // threads of the measured programs
	Entries    map[string]Entry `json:"entries"`              // latency-table key -> entry
	Correction *Correction      `json:"correction,omitempty"` // whole-network correction; nil: plain sum
	Sources    []string         `json:"sources,omitempty"`    // digests (ReportDigest) of the bench reports folded into Entries, sorted
}

type lutFile struct {
	Schema string `json:"schema"`
	ID     string `json:"id"`
	*LUT
}

var (
	lutKeys   = []string{"schema", "id", "target", "space", "machine", "go_version", "kernel_set", "threads", "entries"}
	entryKeys = []string{"mean_us", "var_us2", "count", "median_us"}
)

// ID returns the table's identity: the first 12 hex digits of the SHA-256
// of its canonical content (schema, target, space, kernel set, threads,
// entries, correction and sources). Any refit gives a new identity; provenance
// (machine, Go version) does not enter it.
func (l *LUT) ID() string {
	canon, err := json.Marshal(struct {
		Schema     string           `json:"schema"`
		Target     string           `json:"target"`
		Space      string           `json:"space"`
		KernelSet  string           `json:"kernel_set"`
		Threads    int              `json:"threads"`
		Entries    map[string]Entry `json:"entries"`
		Correction *Correction      `json:"correction"`
		Sources    []string         `json:"sources"`
	}{LUTSchema, l.Target, l.Space, l.KernelSet, l.Threads, l.Entries, l.Correction, l.Sources})
	if err != nil {
		// Only non-finite numbers fail to encode; Validate rejects them.
		return "invalid"
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])[:12]
}

// Lookup returns the entry's median latency in microseconds.
func (l *LUT) Lookup(key string) (us float64, ok bool) {
	e, ok := l.Entries[key]
	return e.MedianUS, ok
}

// Keys returns the table's keys in sorted order.
func (l *LUT) Keys() []string { return sortedKeys(l.Entries) }

// Clone returns a deep copy.
func (l *LUT) Clone() *LUT {
	c := *l
	c.Entries = make(map[string]Entry, len(l.Entries))
	for k, v := range l.Entries {
		c.Entries[k] = v
	}
	if l.Correction != nil {
		c.Correction = l.Correction.clone()
	}
	c.Sources = append([]string(nil), l.Sources...)
	return &c
}

// Validate checks every field.
func (l *LUT) Validate() error {
	switch {
	case !targetNameRE.MatchString(l.Target):
		return fieldErr("target", "expected a target name, got %q", l.Target)
	case l.Space == "" || hasSpace(l.Space):
		return fieldErr("space", "expected a search-space name without spaces, got %q", l.Space)
	case l.Machine.CPU == "":
		return fieldErr("machine.cpu", "expected the CPU model name, got \"\"")
	case l.Machine.Cores < 1:
		return fieldErr("machine.cores", "expected a positive integer, got %d", l.Machine.Cores)
	case l.GoVersion == "":
		return fieldErr("go_version", "expected a Go version such as \"go1.26.0\", got \"\"")
	case l.KernelSet == "":
		return fieldErr("kernel_set", "expected a kernel set name, got \"\"")
	case l.Threads < 1:
		return fieldErr("threads", "expected a positive integer, got %d", l.Threads)
	case len(l.Entries) == 0:
		return fieldErr("entries", "expected at least one entry, got none")
	}
	for _, k := range l.Keys() {
		f := fmt.Sprintf("entries[%q]", k)
		if k == "" || hasSpace(k) {
			return fieldErr(f, "expected a latency key without spaces")
		}
		if err := l.Entries[k].validate(); err != nil {
			return prefixField(err, f)
		}
	}
	if l.Correction != nil {
		if err := l.Correction.validate(); err != nil {
			return prefixField(err, "correction")
		}
	}
	for i, d := range l.Sources {
		if !digestRE.MatchString(d) {
			return fieldErr(fmt.Sprintf("sources[%d]", i), "expected %d lower-case hex digits, got %q", digestLen, d)
		}
		if i > 0 && l.Sources[i-1] >= d {
			return fieldErr(fmt.Sprintf("sources[%d]", i), "expected sorted, distinct digests, got %q after %q", d, l.Sources[i-1])
		}
	}
	return nil
}

const digestLen = 16

var digestRE = regexp.MustCompile(fmt.Sprintf("^[0-9a-f]{%d}$", digestLen))

// ReportDigest identifies a bench report: the first 16 hex digits of the
// SHA-256 of its JSON encoding. A table lists the digests of the reports
// folded into its entries, so that Calibrate never counts a report twice.
func ReportDigest(r *BenchReport) string {
	data, err := json.Marshal(r)
	if err != nil {
		return strings.Repeat("0", digestLen)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:digestLen]
}

func addSources(l *LUT, reports []*BenchReport) {
	set := map[string]bool{}
	for _, d := range l.Sources {
		set[d] = true
	}
	for _, r := range reports {
		set[ReportDigest(r)] = true
	}
	l.Sources = sortedKeys(set)
}

func (e Entry) validate() error {
	if e.Count < 1 {
		return fieldErr("count", "expected a positive integer, got %d", e.Count)
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"mean_us", e.MeanUS}, {"var_us2", e.VarUS2}, {"median_us", e.MedianUS}} {
		if err := finiteNonNeg(c.name, c.v); err != nil {
			return err
		}
	}
	return nil
}

// ParseLUT decodes and validates a latency table. Unknown fields, missing
// fields, a wrong schema and an id that does not match the content are
// errors.
func ParseLUT(data []byte) (*LUT, error) {
	if err := checkSchema(data, LUTSchema); err != nil {
		return nil, err
	}
	if err := requireKeys(data, "", lutKeys...); err != nil {
		return nil, err
	}
	var raw struct {
		Machine json.RawMessage            `json:"machine"`
		Entries map[string]json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, describeJSON(data, err)
	}
	if err := requireKeys(raw.Machine, "machine", "cpu", "cores"); err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(raw.Entries) {
		f := fmt.Sprintf("entries[%q]", k)
		if err := requireKeys(raw.Entries[k], f, entryKeys...); err != nil {
			return nil, err
		}
		if err := decodeStrict(raw.Entries[k], &Entry{}); err != nil {
			return nil, prefixField(err, f)
		}
	}
	l := &LUT{}
	f := lutFile{LUT: l}
	if err := decodeStrict(data, &f); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if id := l.ID(); f.ID != id {
		return nil, fieldErr("id", "expected %q (the hash of the content), got %q: the table was changed after it was written; derive tables with BuildLUT or Calibrate instead of editing them", id, f.ID)
	}
	return l, nil
}

// Load reads a latency-table file.
func Load(path string) (*LUT, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	l, err := ParseLUT(data)
	return l, inFile(err, path, 0)
}

// Marshal returns the table's file form: indented JSON with schema and id,
// keys sorted, ending in a newline.
func (l *LUT) Marshal() ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(lutFile{Schema: LUTSchema, ID: l.ID(), LUT: l}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Save writes the table to path atomically: it writes a temporary file in
// the same directory, syncs it and renames it over path, so readers see the
// old file or the new one, never a partial one.
func (l *LUT) Save(path string) error {
	data, err := l.Marshal()
	if err != nil {
		return inFile(err, path, 0)
	}
	return atomicfile.Write(path, data)
}

// layerSample is one measured layer of one bench report, in microseconds.
type layerSample struct {
	median, mean, variance float64
	runs                   int
}

// collectLayers gathers the keyed layers of reports by key.
func collectLayers(reports []*BenchReport) map[string][]layerSample {
	out := map[string][]layerSample{}
	for _, r := range reports {
		for _, ly := range r.Layers {
			if ly.Key == "" {
				continue
			}
			out[ly.Key] = append(out[ly.Key], layerSample{
				median: ly.MedianNS / 1e3, mean: ly.MeanNS / 1e3, variance: ly.VarNS2 / 1e6, runs: r.Runs,
			})
		}
	}
	return out
}

// entryFromSamples summarises the samples of one key: the median of the
// per-report medians, and the mean and variance pooled over all runs.
func entryFromSamples(s []layerSample) Entry {
	meds := make([]float64, len(s))
	var n, sum float64
	for i, x := range s {
		meds[i] = x.median
		n += float64(x.runs)
		sum += float64(x.runs) * x.mean
	}
	mean := sum / n
	var ss float64
	for _, x := range s {
		d := x.mean - mean
		ss += float64(x.runs) * (x.variance + d*d)
	}
	return Entry{MeanUS: mean, VarUS2: ss / n, Count: int(n), MedianUS: median(meds)}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// provenance checks that reports agree on target, kernel set, threads and
// machine, and returns the shared values.
func provenance(target string, reports []*BenchReport) (kernelSet string, threads int, m Machine, goVersion string, err error) {
	if len(reports) == 0 {
		return "", 0, Machine{}, "", fmt.Errorf("no bench reports")
	}
	first := reports[0]
	versions := map[string]bool{}
	for i, r := range reports {
		where := fmt.Sprintf("bench report %d (model %q)", i, r.Model)
		if err := r.Validate(); err != nil {
			return "", 0, Machine{}, "", inFile(err, where, 0)
		}
		switch {
		case r.Target != target:
			err = fieldErr("target", "expected %q, got %q", target, r.Target)
		case r.KernelSet != first.KernelSet:
			err = fieldErr("kernel_set", "expected %q (as in report 0), got %q", first.KernelSet, r.KernelSet)
		case r.Threads != first.Threads:
			err = fieldErr("threads", "expected %d (as in report 0), got %d", first.Threads, r.Threads)
		case r.CPU != first.CPU || r.Cores != first.Cores:
			err = fieldErr("cpu", "expected %q with %d cores (as in report 0), got %q with %d cores; one table describes one machine", first.CPU, first.Cores, r.CPU, r.Cores)
		}
		if err != nil {
			return "", 0, Machine{}, "", inFile(err, where, 0)
		}
		versions[r.GoVersion] = true
	}
	return first.KernelSet, first.Threads, Machine{CPU: first.CPU, Cores: first.Cores},
		strings.Join(sortedKeys(versions), ","), nil
}

// BuildLUT derives a latency table for target and search space from bench
// reports of one machine: for each key, the entry's median is the median of
// the per-report layer medians, its mean and variance are pooled over all
// runs, and its count is the number of runs. Layers without a key are
// skipped. Reports must agree on target, kernel set, threads and CPU.
func BuildLUT(target, space string, reports []*BenchReport) (*LUT, error) {
	ks, threads, m, gov, err := provenance(target, reports)
	if err != nil {
		return nil, err
	}
	samples := collectLayers(reports)
	if len(samples) == 0 {
		return nil, fmt.Errorf("bench reports: no layer has a latency key; build the benchmark from an annotated model")
	}
	l := &LUT{Target: target, Space: space, Machine: m, GoVersion: gov, KernelSet: ks, Threads: threads,
		Entries: make(map[string]Entry, len(samples))}
	for k, s := range samples {
		l.Entries[k] = entryFromSamples(s)
	}
	addSources(l, reports)
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return l, nil
}
