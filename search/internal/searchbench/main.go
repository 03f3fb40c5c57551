package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
)

func main() {
	spaceName := flag.String("space", "fmnist", "built-in search space")
	what := flag.String("what", "weight", "weight, arch or allweight")
	gate := flag.String("gate", search.GateFullV2, "gate mode for -what arch")
	k := flag.Int("k", 7, "number of candidates (first k of the default list)")
	batch := flag.Int("batch", 64, "batch size")
	steps := flag.Int("steps", 10, "timed steps")
	warm := flag.Int("warm", 2, "untimed steps first")
	par := flag.Int("parallelism", 0, "simplego workers (0: GOMAXPROCS)")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the timed steps")
	flag.Parse()
	if err := run(*spaceName, *what, *gate, *k, *batch, *steps, *warm, *par, *prof); err != nil {
		fmt.Fprintln(os.Stderr, "searchbench:", err)
		os.Exit(1)
	}
}

func run(spaceName, what, gate string, k, batch, steps, warm, par int, prof string) error {
	sp, err := space.Builtin(spaceName)
	if err != nil {
		return err
	}
	if k < 1 || k > len(space.DefaultCandidates) {
		return fmt.Errorf("-k: expected 1..%d, got %d", len(space.DefaultCandidates), k)
	}
	sp.Candidates = space.DefaultCandidates[:k]
	if k == 1 {
		sp.Candidates = []string{"k3e6"}
	}
	plan, err := sp.Plan()
	if err != nil {
		return err
	}
	cfg := search.DefaultConfig()
	cfg.BatchSize, cfg.ArchBatchSize = batch, batch
	cfg.Parallelism = par
	cfg.LatencyLoss = search.LossMulLog
	tab := search.MACTable(plan, 1000)
	m, err := search.NewLatencyModel(plan, tab)
	if err != nil {
		return err
	}
	cfg.TargetLatency = m.Fixed * 1.5
	switch what {
	case "arch":
		cfg.GateMode = gate
	case "allweight":
		cfg.GateMode = search.GateAll
	case "weight":
	default:
		return fmt.Errorf("-what: expected weight, arch or allweight, got %q", what)
	}
	s, err := search.New(plan, cfg, tab)
	if err != nil {
		return err
	}
	defer s.Close()
	in := plan.Stem.In
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, batch*in.C*in.H*in.W)
	y := make([]int, batch)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range y {
		y[i] = rng.IntN(plan.Classes)
	}
	var pathT, recT float64
	step := func() error {
		var err error
		switch what {
		case "arch":
			var st search.ArchStats
			st, err = s.ArchStep(x, y)
			pathT += st.PathTime.Seconds()
			recT += st.RecomputeTime.Seconds()
		default:
			_, err = s.WeightStep(x, y, 0.01, false)
		}
		return err
	}
	for i := 0; i < warm; i++ {
		if err := step(); err != nil {
			return err
		}
	}
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	pathT, recT = 0, 0
	var times []float64
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	for i := 0; i < steps; i++ {
		ts := time.Now()
		if err := step(); err != nil {
			return err
		}
		times = append(times, time.Since(ts).Seconds())
	}
	wall := time.Since(t0).Seconds()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)
	sort.Float64s(times)
	med := times[len(times)/2]
	fmt.Printf("space=%s what=%s gate=%s k=%d batch=%d steps=%d\n", spaceName, what, cfg.GateMode, k, batch, steps)
	fmt.Printf("step median %.3f s, min %.3f s, max %.3f s; %.1f images/s (median); cpu %.2f cores\n",
		med, times[0], times[len(times)-1], float64(batch)/med, cpu/wall)
	if what == "arch" {
		fmt.Printf("mean per step: path forward+backward %.3f s, recomputing other candidates %.3f s\n", pathT/float64(steps), recT/float64(steps))
	}
	fmt.Printf("peak RSS %.0f MiB\n", float64(ru1.Maxrss)/1024)
	return nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
