package search

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/pnasml/pnas/search/internal/pnasbe"
)

// Backends returns the GoMLX backends compiled into this program, sorted:
// "pnas" (pnas's own, the default) and "go" (GoMLX's simplego, pure Go)
// always; "xla" (with its aliases) in a build with the xla tag.
func Backends() []string {
	names := backends.List()
	slices.Sort(names)
	return names
}

// DefaultBackend is the backend of a searcher whose Config.Backend is "".
const DefaultBackend = pnasbe.BackendName

// openBackend returns the GoMLX backend of a searcher: cfg.Backend passed
// through to backends.NewWithConfig when set, else pnas's own backend with
// cfg.Parallelism workers per op.
func openBackend(cfg Config) (backends.Backend, error) {
	spec := cfg.Backend
	if spec == "" {
		spec = DefaultBackend
	}
	name, conf, _ := strings.Cut(spec, ":")
	if name == pnasbe.BackendName {
		// Parallelism applies unless the spec names a parallelism.
		if cfg.Parallelism > 0 && !strings.Contains(conf, "parallelism=") {
			conf = strings.TrimPrefix(fmt.Sprintf("%s,parallelism=%d", conf, cfg.Parallelism), ",")
		}
		be, err := pnasbe.New(conf)
		if err != nil {
			return nil, fmt.Errorf("search: backend %q: %w", spec, err)
		}
		return be, nil
	}
	if !slices.Contains(backends.List(), name) {
		hint := ""
		if name == "xla" || name == "stablehlo" || name == "hlo" || name == "shlo" {
			hint = "; build pnas with 'go build -tags xla ./cmd/pnas' (needs cgo and a PJRT plugin, see docs/search.md)"
		}
		return nil, fmt.Errorf("search: backend %q: not compiled into this program (compiled in: %s)%s",
			cfg.Backend, strings.Join(Backends(), ", "), hint)
	}
	if name == simplego.BackendName {
		// The searcher's own options first; the user's, parsed later,
		// override them.
		be, err := newSimplego(strings.TrimSuffix(simplegoSpec(cfg.Parallelism)+","+conf, ","))
		if err != nil {
			return nil, fmt.Errorf("search: backend %q: %w", cfg.Backend, err)
		}
		return be, nil
	}
	be, err := newRegistered(cfg.Backend)
	if err != nil {
		return nil, fmt.Errorf("search: backend %q: %w", cfg.Backend, err)
	}
	return be, nil
}

// newRegistered calls backends.NewWithConfig, turning its panics (it panics
// on some configuration errors) into errors.
func newRegistered(spec string) (be backends.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			be, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return backends.NewWithConfig(spec)
}

// newBackend returns the simplego backend of a searcher.
//
// With parallelism 0 it runs a graph's independent ops concurrently
// (ops_parallel) with an unbounded worker pool (parallelism=-1); Go's
// scheduler spreads the goroutines over GOMAXPROCS threads. A bounded pool
// deadlocks: concurrent DotGenerals each wait for workers that the others
// hold. The graphs are built so that concurrent execution holds about what
// sequential execution holds (see gx.Depthwise and the filled tensors of
// package gx).
//
// With parallelism N > 0 it runs ops one at a time (ops_sequential), each
// op with up to N workers.
func newBackend(parallelism int) (backends.Backend, error) {
	return newSimplego(simplegoSpec(parallelism))
}

// simplegoSpec is the simplego configuration of newBackend.
func simplegoSpec(parallelism int) string {
	if parallelism == 0 {
		return "ops_parallel,parallelism=-1"
	}
	return fmt.Sprintf("ops_sequential,parallelism=%d", parallelism)
}

// stdoutMu serializes newSimplego's redirection of os.Stdout.
var stdoutMu sync.Mutex

// newSimplego calls simplego.New, which prints a line to standard output
// whenever its configuration sets a parallelism; the line is discarded so
// that programs built on the searcher own their output.
func newSimplego(spec string) (backends.Backend, error) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return simplego.New(spec)
	}
	defer devnull.Close()
	old := os.Stdout
	os.Stdout = devnull
	defer func() { os.Stdout = old }()
	return simplego.New(spec)
}

// sequentialBackend returns the backend for graphs that run side by side
// (the full_v2 recomputation), where the concurrency is between the graphs.
// With simplego it is a second backend that runs a graph's ops one at a
// time in creation order, each op with the searcher's workers; any other
// backend schedules its own work and is shared.
func (s *Searcher) sequentialBackend() (backends.Backend, error) {
	if !s.pooled() {
		return s.backend, nil
	}
	if s.seqBackend == nil {
		par := s.cfg.Parallelism
		if par == 0 {
			par = -1
		}
		be, err := newSimplego(fmt.Sprintf("ops_sequential,parallelism=%d", par))
		if err != nil {
			return nil, err
		}
		s.seqBackend = be
	}
	return s.seqBackend, nil
}
