package targets_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/targets"
)

// TestDocExamples parses every JSON example of docs/latency.md with the
// decoder of its schema, so the documentation cannot drift from the code.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "latency.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	blocks := strings.Split(string(doc), "```json\n")
	for i, b := range blocks[1:] {
		end := strings.Index(b, "```")
		if end < 0 {
			t.Fatalf("example %d is not closed", i)
		}
		data := []byte(b[:end])
		var probe struct{ Schema string }
		if err := json.Unmarshal(data, &probe); err != nil {
			t.Fatalf("example %d: %v\n%s", i, err, data)
		}
		seen[probe.Schema]++
		switch probe.Schema {
		case targets.BenchSchema:
			_, err = targets.ParseBench(data)
		case targets.LUTSchema:
			_, err = targets.ParseLUT(data)
		case targets.TargetSchema:
			_, err = targets.ParseTarget(data, "docs example")
		case targets.MeasureSchema:
			var line bytes.Buffer
			if err := json.Compact(&line, data); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "m.jsonl")
			writeFile(t, path, line.String()+"\n")
			_, err = targets.ReadMeasurements(path)
		default:
			t.Errorf("example %d has unknown schema %q", i, probe.Schema)
		}
		if err != nil {
			t.Errorf("example %d (%s): %v", i, probe.Schema, err)
		}
	}
	for _, s := range []string{targets.BenchSchema, targets.LUTSchema, targets.TargetSchema, targets.MeasureSchema} {
		if seen[s] == 0 {
			t.Errorf("docs/latency.md has no %s example", s)
		}
	}
}
