package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
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

// A resumed job's ETA comes from the steps done since it resumed, not from
// the steps its checkpoint had already done.
func TestResumeETA(t *testing.T) {
	b := NewTo(&bytes.Buffer{}, "search", 100, false)
	b.Resume(90)
	b.start = b.start.Add(-10 * time.Second) // 10 s for ...
	b.Add(5)                                 // ... 5 steps: 2 s a step
	if got := b.eta(b.start.Add(10 * time.Second)); got != "10s" {
		t.Errorf("ETA after resuming at 90 and 5 steps in 10 s = %s, want 10s (5 steps left at 2 s each)", got)
	}
	if got := NewTo(&bytes.Buffer{}, "x", 10, false).eta(time.Now()); got != "?" {
		t.Errorf("ETA before any step = %s, want ?", got)
	}
}
