package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Block interleaving (-interleave blocks, the default): for one model and
// thread count at a time, every engine to compare runs as a server that
// times runs when asked (the programs' -bench-stdin, bench.js --serve),
// and the engines take turns in blocks of about blockTime. Runs of
// different engines are then a fraction of a second apart, rather than
// the seconds between two processes of a pass, and a machine whose speed
// changes from one second to the next (a virtual machine whose cores the
// host shares) moves them alike. Between blocks the driver waits blockGap:
// after a run ONNX Runtime's threads spin for 20-40 ms (its allow_spinning
// default), and they took half the cores from the first runs of the next
// engine's block when the gap was 5 ms (MobileNetV2-224 on two threads,
// 6.2 ms a run against 3.2 ms; with 80 ms, 3.2 ms). The first skipRuns
// runs of a block, which start with cold caches and threads, are left out
// of the medians. Each pass is enough rounds for about passTime of runs
// per engine.
const (
	blockTime = 100 * time.Millisecond
	blockGap  = 100 * time.Millisecond
	passTime  = 600 * time.Millisecond
	skipRuns  = 3
	minBlock  = 12
	maxBlock  = 2000
	maxRounds = 100
)

// server is an engine timing runs on request: one line with a number of
// runs in, one JSON array of run times out.
type server struct {
	name    string
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	scale   float64 // multiplies the times it prints into ms
	errb    *lineBuffer
	waited  bool
	waitErr error
}

// wait waits for the process once (then its stderr is all in errb).
func (s *server) wait() error {
	if !s.waited {
		s.waited, s.waitErr = true, s.cmd.Wait()
	}
	return s.waitErr
}

// fail is err with the end of the server's stderr, once it has exited.
func (s *server) fail(err error) error {
	s.in.Close()
	s.wait()
	return fmt.Errorf("%s: %v\n%s", s.name, err, s.errb.b)
}

// lineBuffer keeps the end of a server's stderr for error messages.
type lineBuffer struct{ b []byte }

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if len(l.b) > 4096 {
		l.b = l.b[len(l.b)-4096:]
	}
	return len(p), nil
}

func startServer(name string, cmd *exec.Cmd, scale float64) (*server, error) {
	s := &server{name: name, cmd: cmd, scale: scale, errb: &lineBuffer{}}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = s.errb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	s.in, s.out = in, bufio.NewReaderSize(out, 1<<16)
	return s, nil
}

// runs times n runs and returns their times in ms.
func (s *server) runs(n int) ([]float64, error) {
	if _, err := fmt.Fprintf(s.in, "%d\n", n); err != nil {
		return nil, s.fail(err)
	}
	line, err := s.out.ReadBytes('\n')
	if err != nil {
		return nil, s.fail(err)
	}
	var t []float64
	if err := json.Unmarshal(line, &t); err != nil || len(t) != n {
		return nil, s.fail(fmt.Errorf("expected a JSON array of %d run times, got %q (%v)", n, line, err))
	}
	for i := range t {
		t[i] *= s.scale
	}
	return t, nil
}

func (s *server) close() error {
	s.in.Close()
	if err := s.wait(); err != nil {
		return fmt.Errorf("%s: %v\n%s", s.name, err, s.errb.b)
	}
	return nil
}

// ortServer starts bench.js --serve on model m; preload as in ort.
func (c *cmp) ortServer(m string, threads int, preload string) (*server, error) {
	models, err := filepath.Abs(c.models)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "bench.js", "--dir", models, "--models", m, "--threads", fmt.Sprint(threads),
		"--warmup", "10", "--serve")
	cmd.Dir = c.harness
	name := "node bench.js --serve"
	if preload != "" {
		cmd.Env = append(os.Environ(), "LD_PRELOAD="+preload)
		name += " with " + preload
	}
	return startServer(name, cmd, 1)
}

// modelMACs reads the multiply-adds per image that build_models.js wrote
// next to model m.
func (c *cmp) modelMACs(m string) (float64, error) {
	b, err := os.ReadFile(filepath.Join(c.models, m+".json"))
	if err != nil {
		return 0, err
	}
	var meta struct {
		MACs float64 `json:"macs_per_image"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return 0, fmt.Errorf("%s.json: %v", m, err)
	}
	return meta.MACs, nil
}

// blockGroup times the rows of one model and thread count, rows[i]
// compared with ONNX Runtime on model m, in passes of interleaved blocks,
// and appends each pass's medians to the rows.
func (c *cmp) blockGroup(rows []*row, bins map[string]map[string]string, m string, threads, passes int) error {
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.in.Close()
			if !s.waited {
				s.cmd.Process.Kill()
			}
			s.wait()
		}
	}()
	start := func(s *server, err error) (int, error) {
		if err != nil {
			return 0, err
		}
		servers = append(servers, s)
		return len(servers) - 1, nil
	}
	ortNative, err := start(c.ortServer(m, threads, ""))
	if err != nil {
		return err
	}
	ortAVX2 := -1
	if c.ortAVX2 != "" {
		if ortAVX2, err = start(c.ortServer(m, threads, c.ortAVX2)); err != nil {
			return err
		}
	}
	pnas := make([]int, len(rows))
	for i, r := range rows {
		bin := bins[r.Model][r.Target]
		cmd := exec.Command(bin, "-bench-stdin", "-threads", fmt.Sprint(threads))
		if pnas[i], err = start(startServer(bin+" -bench-stdin", cmd, 1e-6)); err != nil {
			return err
		}
	}
	// the block size from a few runs of each (after their warm-up)
	est := 0.0
	for _, s := range servers {
		t, err := s.runs(5)
		if err != nil && strings.Contains(string(s.errb.b), "-bench-stdin") {
			return fmt.Errorf("%v(a program compiled by a pnas without -bench-stdin: time it with -interleave passes)", err)
		}
		if err != nil {
			return err
		}
		est = max(est, median(t[1:]))
		time.Sleep(blockGap)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	block := min(maxBlock, max(minBlock, int(ms(blockTime)/est+0.5)))
	rounds := min(maxRounds, max(3, int(ms(passTime)/(float64(block-skipRuns)*est)+0.99)))
	fmt.Fprintf(os.Stderr, "  %d engines, blocks of %d runs, %d rounds a pass\n", len(servers), block, rounds)
	for p := 0; p < passes; p++ {
		times := make([][]float64, len(servers))
		for r := 0; r < rounds; r++ {
			// each round starts with another engine, so that none
			// always follows the same one
			for k := range servers {
				i := (r + k) % len(servers)
				t, err := servers[i].runs(block)
				if err != nil {
					return err
				}
				times[i] = append(times[i], t[skipRuns:]...)
				time.Sleep(blockGap)
			}
		}
		med := make([]float64, len(servers))
		for i, t := range times {
			sort.Float64s(t)
			med[i] = median(t)
		}
		for i, r := range rows {
			r.PnasMS = append(r.PnasMS, med[pnas[i]])
			if ortAVX2 >= 0 && hidesAVX512(r.Target) {
				r.OrtKernels = "avx2"
				r.OrtMS = append(r.OrtMS, med[ortAVX2])
				r.OrtNativeMS = append(r.OrtNativeMS, med[ortNative])
			} else {
				r.OrtKernels = "native"
				r.OrtMS = append(r.OrtMS, med[ortNative])
			}
		}
		fmt.Fprintf(os.Stderr, "  pass %d/%d: ONNX Runtime %.3f ms", p+1, passes, med[ortNative])
		for i, r := range rows {
			fmt.Fprintf(os.Stderr, ", %s %.3f", r.Target, med[pnas[i]])
		}
		fmt.Fprintln(os.Stderr)
	}
	for _, s := range servers {
		if err := s.close(); err != nil {
			return err
		}
	}
	servers = nil
	return nil
}
