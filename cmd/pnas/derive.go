package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/targets"
)

// DeriveCmd is pnas derive.
type DeriveCmd struct {
	Dir           string `arg:"" help:"Run directory of a finished pnas search." placeholder:"RUNDIR"`
	LatencyTarget string `name:"latency-target" help:"Latency budget T of the derived network, e.g. 180us (--derive budget: the most probable architecture predicted within 10% below T)." placeholder:"DURATION"`
	Derive        string `help:"budget (the most probable architecture within 10% below --latency-target) or argmax (the most probable candidate of every layer)." default:"budget" enum:"budget,argmax"`
	Output        string `short:"o" required:"" help:"Directory for the derived model.json (+ .safetensors) and its plots; not RUNDIR." placeholder:"DIR"`
	LUT           string `name:"lut" help:"The search's latency table file, when it has moved since the search (its id must match)." type:"existingfile" placeholder:"TABLE.json"`
	Threads       int    `help:"Worker threads (0 = all cores)." default:"0"`
}

// Help gives examples.
func (DeriveCmd) Help() string {
	return `Reads another network off the architecture parameters of a finished search,
without searching again: with --loss none the architecture steps never read
the latency target, so one search gives the network of every budget. The
network carries the supernet's weights with its BN statistics re-estimated,
as pnas search's own model does; train it with pnas train.

Examples:
  pnas derive runs/s110 --latency-target 180us -o runs/s110/at-180us
  pnas derive runs/s110 --derive argmax -o runs/s110/argmax`
}

// Run derives.
func (c *DeriveCmd) Run(g *globals) error {
	if c.Derive == search.DeriveBudget && c.LatencyTarget == "" {
		return &exitError{code: 2, err: fmt.Errorf("--latency-target: expected a duration such as 180us with --derive budget")}
	}
	if abs(c.Output) == abs(c.Dir) {
		return &exitError{code: 2, err: fmt.Errorf("-o %s: expected a directory other than the search's own (its model.json would be replaced)", c.Output)}
	}
	if search.HasRun(c.Output) {
		return &exitError{code: 2, err: fmt.Errorf("-o %s: holds a search; choose another directory", c.Output)}
	}
	rd, err := search.OpenRun(c.Dir)
	if err != nil {
		return err
	}
	var sc SearchCmd
	if err := json.Unmarshal(rd.Settings.Args, &sc); err != nil {
		return fmt.Errorf("%s: args: %v", filepath.Join(rd.Path, search.RunFile), err)
	}
	if c.LUT != "" {
		sc.LUT = c.LUT
	} else if sc.LUT == "" && rd.Settings.TableFile != "" {
		sc.LUT = rd.Settings.TableFile
	}
	if c.Threads != 0 {
		sc.Threads = c.Threads
	}
	plan, err := rd.Settings.Space.Plan()
	if err != nil {
		return err
	}
	var (
		lut *targets.LUT
		lat search.LatencyTable
	)
	if rd.Settings.Table != "" { // the search read a table: the same one
		if lut, _, err = sc.loadTable(true); err != nil {
			return err
		}
		lat = lut.SearchTable()
	}
	if sc.Target == "" {
		sc.Target = defaultSearchTarget
	}
	s, err := rd.Resume(lat, search.Placement{Backend: sc.Backend, Parallelism: sc.Threads})
	if err != nil {
		return err
	}
	defer s.Close()
	cfg := s.Config()
	if total, at := cfg.WarmupEpochs+cfg.SearchEpochs+cfg.TrainEpochs, s.Position().Epoch; at < total {
		return fmt.Errorf("%s: the search stopped at epoch %d of %d; finish it first with: pnas search --resume %s", c.Dir, at, total, c.Dir)
	}
	if cfg.TrainEpochs > 0 {
		return fmt.Errorf("%s: the search trained its own derived network for %d train epochs after the search, so the supernet no longer ranks other networks fairly; derive from a search run with --train-epochs 0", c.Dir, cfg.TrainEpochs)
	}
	t := cfg.TargetLatency
	if c.Derive == search.DeriveBudget {
		if lat == nil {
			return fmt.Errorf("%s: the search ran without a latency table; --derive budget needs one (search with --lut or a loss that reads the table)", c.Dir)
		}
		lm, err := search.NewLatencyModel(plan, lat)
		if err != nil {
			return err
		}
		fast, slow := extremes(plan, lm)
		if t, err = reachableTarget(c.LatencyTarget, plan, lat.ID(), fast, slow); err != nil {
			return err
		}
		sc.LatencyTarget = c.LatencyTarget
	}
	if err := s.SetDerivation(c.Derive, t); err != nil {
		return err
	}
	d, err := sc.data(plan)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Output, 0o755); err != nil {
		return err
	}
	return sc.derive(g, rd, s, plan, d, lut, c.Output)
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}
