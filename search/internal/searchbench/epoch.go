package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/runtime/kernels"
	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
)

// errStop ends an epoch run after the requested number of steps.
var errStop = errors.New("enough steps")

// epoch times one warm-up epoch of pnas search on real data: the training
// split minus 5,000 held-out images (10% for smaller sets), random crop and
// flip, uniformly sampled paths, batch after batch as Searcher.Run draws
// them. The time runs from the start to the end of the last step; the
// held-out evaluation that ends an epoch is not timed. maxSteps > 0 stops
// after that many steps.
func epoch(spaceName, dataSpec, backend string, k, batch, par, maxSteps int, prof string, jsonOut bool) error {
	sp, err := space.Builtin(spaceName)
	if err != nil {
		return err
	}
	if k < 1 || k > len(space.DefaultCandidates) {
		return fmt.Errorf("-k: expected 1..%d, got %d", len(space.DefaultCandidates), k)
	}
	sp.Candidates = space.DefaultCandidates[:k]
	plan, err := sp.Plan()
	if err != nil {
		return err
	}
	in := plan.Stem.In
	all, err := data.Open(dataSpec, "train", in.C, in.H, in.W)
	if err != nil {
		return err
	}
	train, held, err := data.HoldOut(all, min(all.Len()/10, 5000), 0)
	if err != nil {
		return err
	}
	d := search.Data{Train: train, Held: held, Norm: train.Stats(), Aug: &data.Augment{Pad: 2, Flip: true}}
	cfg := search.DefaultConfig()
	cfg.BatchSize, cfg.ArchBatchSize = batch, batch
	cfg.Parallelism, cfg.Backend = par, backend
	cfg.WarmupEpochs, cfg.SearchEpochs, cfg.TrainEpochs = 1, 0, 0
	cfg.LatencyLoss = search.LossNone
	s, err := search.New(plan, cfg, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	s.ManageProcessMemory()
	stop, err := startCPUProfile(prof)
	if err != nil {
		return err
	}
	defer stop()
	steps := 0
	var last time.Time
	var lastCPU, loss float64
	c0, t0 := cpuSeconds(), time.Now()
	err = s.Run(context.Background(), d, search.Hooks{Step: func(st search.StepInfo) error {
		steps++
		last, lastCPU = time.Now(), cpuSeconds()
		loss = st.Weight.Loss
		if maxSteps > 0 && steps >= maxSteps {
			return errStop
		}
		return nil
	}})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	wall, cpu := last.Sub(t0).Seconds(), lastCPU-c0
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	rss := float64(ru.Maxrss) / 1024
	if jsonOut {
		fmt.Printf("{\"epoch_s\": %.3f, \"steps\": %d, \"images\": %d, \"train_images\": %d, \"cores\": %.3f, \"rss_mib\": %.1f, \"last_loss\": %.4f, \"kernels\": %q}\n",
			wall, steps, steps*batch, train.Len(), cpu/wall, rss, loss, kernels.KernelSet())
		return nil
	}
	fmt.Printf("warm-up epoch on %s (%d training images, batch %d, K=%d): %d steps in %.1f s (%.1f images/s), %.2f cores, last loss %.4f, peak RSS %.0f MiB\n",
		dataSpec, train.Len(), batch, k, steps, wall, float64(steps*batch)/wall, cpu/wall, loss, rss)
	return nil
}
