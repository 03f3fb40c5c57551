package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestPlainLines(t *testing.T) {
	var buf bytes.Buffer
	b := NewTo(&buf, "eval", 4, false)
	b.every = 0
	b.SetStatus("acc %.2f", 0.5)
	for i := 0; i < 4; i++ {
		b.Add(1)
	}
	b.Done()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), buf.String())
	}
	last := lines[3]
	for _, want := range []string{"eval 4/4", "(100%)", "ETA 0s", "acc 0.50"} {
		if !strings.Contains(last, want) {
			t.Errorf("last line %q lacks %q", last, want)
		}
	}
}

func TestLiveBarCompletes(t *testing.T) {
	var buf bytes.Buffer
	b := NewTo(&buf, "run", 3, true)
	b.Add(3)
	b.Done()
	if !strings.Contains(buf.String(), "3/3") {
		t.Fatalf("live bar output lacks 3/3: %q", buf.String())
	}
}
