// Package progress reports the progress of long jobs (evaluation, search,
// profiling) with an ETA. On a terminal it draws a live bar
// (github.com/vbauerster/mpb/v8); elsewhere (CI logs, pipes) it prints a
// plain line at most every few seconds, so logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Bar tracks one job of a known number of steps.
type Bar struct {
	mu     sync.Mutex
	name   string
	total  int64
	done   int64
	skip   int64 // steps done before this bar started (a resumed job): not in the rate
	start  time.Time
	last   time.Time
	every  time.Duration
	w      io.Writer
	status string

	p   *mpb.Progress
	bar *mpb.Bar
}

// New starts a bar writing to stderr. Total is the number of steps.
func New(name string, total int) *Bar {
	return NewTo(os.Stderr, name, total, term.IsTerminal(int(os.Stderr.Fd())))
}

// NewTo starts a bar on w; live selects the redrawing terminal bar.
func NewTo(w io.Writer, name string, total int, live bool) *Bar {
	b := &Bar{name: name, total: int64(total), start: time.Now(), every: 5 * time.Second, w: w}
	b.last = b.start
	if live {
		b.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())
		b.bar = b.p.AddBar(int64(total),
			mpb.PrependDecorators(decor.Name(name+" "), decor.CountersNoUnit("%d/%d")),
			mpb.AppendDecorators(decor.Percentage(), decor.Name(" ETA "),
				decor.Any(func(decor.Statistics) string { return b.eta(time.Now()) }),
				decor.Any(func(decor.Statistics) string { return b.statusText() })),
		)
	}
	return b
}

func (b *Bar) statusText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status == "" {
		return ""
	}
	return "  " + b.status
}

// SetStatus shows live values (loss, accuracy, ...) next to the bar.
func (b *Bar) SetStatus(format string, args ...any) {
	b.mu.Lock()
	b.status = fmt.Sprintf(format, args...)
	b.mu.Unlock()
}

// Resume marks n steps as done before the bar started (a job resumed from
// a checkpoint); the ETA is then estimated from the steps done since.
func (b *Bar) Resume(n int) {
	b.mu.Lock()
	b.done += int64(n)
	b.skip += int64(n)
	b.mu.Unlock()
	if b.bar != nil {
		b.bar.IncrBy(n)
	}
}

// Add advances the bar by n steps.
func (b *Bar) Add(n int) {
	b.mu.Lock()
	b.done += int64(n)
	done, now := b.done, time.Now()
	printLine := b.bar == nil && (now.Sub(b.last) >= b.every || done == b.total)
	if printLine {
		b.last = now
	}
	b.mu.Unlock()
	if b.bar != nil {
		b.bar.IncrBy(n)
		return
	}
	if printLine {
		fmt.Fprintln(b.w, b.line(done, now))
	}
}

// eta estimates the time left from the rate of the steps done since the
// bar started.
func (b *Bar) eta(now time.Time) string {
	b.mu.Lock()
	done, skip := b.done, b.skip
	b.mu.Unlock()
	if done-skip <= 0 || b.total <= 0 {
		return "?"
	}
	el := now.Sub(b.start)
	return time.Duration(float64(el) / float64(done-skip) * float64(b.total-done)).Round(time.Second).String()
}

func (b *Bar) line(done int64, now time.Time) string {
	el := now.Sub(b.start)
	eta := b.eta(now)
	pct := 0.0
	if b.total > 0 {
		pct = 100 * float64(done) / float64(b.total)
	}
	return fmt.Sprintf("%s %d/%d (%.0f%%) elapsed %s ETA %s%s", b.name, done, b.total, pct, el.Round(time.Second), eta, b.statusText())
}

// Done finishes the bar (also when the job stopped early).
func (b *Bar) Done() {
	if b.bar != nil {
		if !b.bar.Completed() {
			b.bar.Abort(false)
		}
		b.p.Wait()
	}
}
