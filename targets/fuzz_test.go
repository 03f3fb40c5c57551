package targets_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/pnasml/pnas/targets"
)

// The readers of latency tables, bench reports, measurement logs and
// target files must turn any bytes into a valid value or one *targets.Error,
// never a panic or a hang; what they accept must survive a write and a
// second read unchanged. The seeds below (valid documents, the committed
// tables, and a few corrupt ones) run with every `go test`; files in
// testdata/fuzz/<FuzzName>/ are inputs that once failed, kept as
// regressions. A campaign runs each target on its own, for example:
//
//	go test -run='^$' -fuzz='^FuzzParseLUT$' -fuzztime=10m ./targets/
//
// (see the README's Development section for the full list).

var equateEmpty = cmpopts.EquateEmpty()

// checkError fails unless err is a one-line *targets.Error.
func checkError(t *testing.T, err error) {
	t.Helper()
	var e *targets.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not a *targets.Error: %v", err, err)
	}
	if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
		t.Fatalf("error is not one non-empty line: %q", msg)
	}
}

// corruptions returns doc cut in half, with a trailing value, and with its
// first number negated: corrupt seeds made from a valid document.
func corruptions(doc string) []string {
	neg := doc
	if i := strings.IndexAny(doc, "123456789"); i >= 0 {
		neg = doc[:i] + "-" + doc[i:]
	}
	return []string{doc[:len(doc)/2], doc + "{}", neg, "", "null", "[]", `{"schema": 1}`}
}

func FuzzParseLUT(f *testing.F) {
	small, err := smallLUT().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{string(small)}
	for _, name := range []string{"amd64-fmnist.json", "amd64-avx512-fmnist.json"} {
		b, err := os.ReadFile(filepath.Join("luts", name))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, string(b))
	}
	seeds = append(seeds, corruptions(string(small))...)
	seeds = append(seeds, strings.Replace(string(small), `"median_us": 120.25`, `"median_us": 1e400`, 1))
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := targets.ParseLUT(data)
		if err != nil {
			checkError(t, err)
			return
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed table: %v", err)
		}
		l2, err := targets.ParseLUT(out)
		if err != nil {
			t.Fatalf("ParseLUT of Marshal output: %v\n%s", err, out)
		}
		if diff := cmp.Diff(l, l2, equateEmpty); diff != "" || l.ID() != l2.ID() {
			t.Fatalf("Marshal/ParseLUT round trip differs (ids %s, %s):\n%s", l.ID(), l2.ID(), diff)
		}
	})
}

func FuzzParseBench(f *testing.F) {
	r, err := targets.ParseBench([]byte(benchJSON))
	if err != nil {
		f.Fatal(err)
	}
	compact, _ := json.Marshal(r)
	seeds := []string{benchJSON, string(compact)}
	seeds = append(seeds, corruptions(benchJSON)...)
	seeds = append(seeds,
		strings.Replace(benchJSON, `"threads": 1`, `"threads": 1.5`, 1),
		strings.Replace(benchJSON, `"runs": 200`, `"runs": 99999999999999999999`, 1),
		strings.Replace(benchJSON, `"layers": [`, `"layers": [null, `, 1),
	)
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := targets.ParseBench(data)
		if err != nil {
			checkError(t, err)
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseBench accepted an invalid report: %v", err)
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("Marshal of a parsed report: %v", err)
		}
		r2, err := targets.ParseBench(out)
		if err != nil {
			t.Fatalf("ParseBench of Marshal output: %v\n%s", err, out)
		}
		if diff := cmp.Diff(r, r2, equateEmpty); diff != "" {
			t.Fatalf("Marshal/ParseBench round trip differs:\n%s", diff)
		}
	})
}

func FuzzReadMeasurements(f *testing.F) {
	r, err := targets.ParseBench([]byte(benchJSON))
	if err != nil {
		f.Fatal(err)
	}
	rec := &targets.Measurement{
		Schema: targets.MeasureSchema, Time: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Machine: targets.Machine{CPU: r.CPU, Cores: r.Cores}, GoVersion: r.GoVersion,
		BinarySHA256: strings.Repeat("ab", 32), Commit: "3f2a9c1", Target: r.Target, Report: r,
	}
	line, err := json.Marshal(rec)
	if err != nil {
		f.Fatal(err)
	}
	g := string(line)
	seeds := []string{g + "\n", g + "\n\n" + g + "\n", "", "\n"}
	seeds = append(seeds, corruptions(g+"\n")...)
	seeds = append(seeds,
		g+"\n"+strings.Replace(g, `"target":"amd64"`, `"target":"arm64"`, 1)+"\n",
		strings.Replace(g, `"cores":2}`, `"cores":3}`, 1)+"\n",
		g+"\r\n",
	)
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "measurements.jsonl")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		recs, err := targets.ReadMeasurements(path)
		if err != nil {
			checkError(t, err)
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the log: %v", err)
			}
			return
		}
		for i, m := range recs {
			if err := m.Validate(); err != nil {
				t.Fatalf("record %d is invalid: %v", i, err)
			}
			if m.Target != recs[0].Target {
				t.Fatalf("record %d is for %q, record 0 for %q", i, m.Target, recs[0].Target)
			}
		}
		if len(recs) == 0 {
			return
		}
		// What was read appends to a fresh log and reads back the same.
		again := path + ".again"
		os.Remove(again)
		if err := targets.AppendMeasurements(again, recs...); err != nil {
			t.Fatalf("appending records that were read: %v", err)
		}
		recs2, err := targets.ReadMeasurements(again)
		if err != nil {
			t.Fatalf("reading back appended records: %v", err)
		}
		if diff := cmp.Diff(recs, recs2, equateEmpty); diff != "" {
			t.Fatalf("append/read round trip differs:\n%s", diff)
		}
	})
}

func FuzzParseTarget(f *testing.F) {
	seeds := []string{userTarget,
		`{"schema": "pnas-target/1", "name": }`,
		strings.Replace(userTarget, `"kernel_set": "avx2"`, `"kernel_set": "avx512"`, 1),
		strings.Replace(userTarget, `"goarch": "amd64"`, `"goarch": "arm64"`, 1),
	}
	seeds = append(seeds, corruptions(userTarget)...)
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tg, err := targets.ParseTarget(data, "fuzz.json")
		if err != nil {
			checkError(t, err)
			return
		}
		if err := tg.Validate(); err != nil {
			t.Fatalf("ParseTarget accepted an invalid target: %v", err)
		}
	})
}
