package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/internal/plots"
	"github.com/pnasml/pnas/internal/progress"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

// SearchCmd runs a ProxylessNAS search.
type SearchCmd struct {
	Space      string `help:"Search space: a built-in name (${spaces}) or a JSON file." default:"fmnist"`
	Candidates string `help:"Candidate ops, comma separated (default: the space's): k3e3,k3e6,k5e3,k5e6,k7e3,k7e6,zero." placeholder:"LIST"`
	Data       string `help:"Data set: ${datasets}." default:"fashion-mnist"`
	TrainLimit int    `name:"train-limit" help:"Use only the first N training images (0 = all)." default:"0"`
	HeldOut    int    `name:"held-out" help:"Training images held out for architecture steps and model selection (0 = 10%, at most 5,000)." default:"0"`
	Augment    bool   `help:"Random crop (2-pixel padding) and horizontal flip in weight steps." default:"true" negatable:""`

	Target        string  `help:"Target whose latency table the search optimises against (default: the --lut table's target, else amd64)."`
	LUT           string  `name:"lut" help:"Latency table file (default: the target's)." type:"existingfile" placeholder:"TABLE.json"`
	LatencyTarget string  `name:"latency-target" help:"Target latency T, e.g. 80us or 1.2ms (default: the geometric mean of the fastest and slowest network in the table)." placeholder:"DURATION"`
	Loss          string  `help:"Latency loss: mul#log (a*CE*(ln E/ln T)^beta), add#linear (CE + lambda*(E-T)/T), add#hinge (CE + lambda*max(0,(E-T)/T): no pressure below the target) or none." default:"mul#log" enum:"mul#log,add#linear,add#hinge,none"`
	LossA         float64 `name:"loss-a" help:"a of mul#log." default:"0.2"`
	LossBeta      float64 `name:"loss-beta" help:"beta of mul#log." default:"0.3"`
	LossLambda    float64 `name:"loss-lambda" help:"lambda of add#linear and add#hinge." default:"0.1"`

	Derive         string  `help:"How the network is read off alpha: argmax (the most probable candidate of every layer, the reference) or budget (the most probable architecture whose predicted latency lies within 10% below --latency-target: the budget is spent where alpha ranks the candidates highest)." default:"argmax" enum:"argmax,budget"`
	Share          string  `help:"Weights of a layer's candidates: nested (slices of one shared set: the expansion's first channels, the centre of the largest kernel; each keeps its own BN; the supernet learns about as fast as one network) or none (independent weights, the reference; the layers that start a stage then learn slowly)." default:"nested" enum:"nested,none"`
	Gates          string  `help:"Gate gradient: full_v2, two (two paths, rescaled), all (every candidate weighted, DARTS-style) or reinforce (sampled paths rewarded by ACC*(LAT/T)^w; --loss is not used)." default:"full_v2" enum:"full_v2,two,all,reinforce"`
	RLSamples      int     `name:"rl-samples" help:"reinforce: paths sampled per architecture step." default:"10"`
	RLWeight       float64 `name:"rl-weight" help:"reinforce: latency exponent w of the reward ACC*(LAT/T)^w (0: accuracy alone)." default:"-0.1"`
	WarmupEpochs   int     `name:"warmup-epochs" help:"Weight-only epochs on uniformly sampled paths (reference: 40)." default:"5"`
	Epochs         int     `help:"Search epochs (reference: 120)." default:"15"`
	TrainEpochs    int     `name:"train-epochs" help:"Epochs after the search that train the derived network alone, starting from the supernet's weights (0: none)." default:"5"`
	TrainLR        float64 `name:"train-lr" help:"Weight learning rate of the train-epochs cosine." default:"0.025"`
	Batch          int     `help:"Images per weight step." default:"64"`
	ArchBatch      int     `name:"arch-batch" help:"Held-out images per architecture step." default:"64"`
	ArchEvery      int     `name:"arch-every" help:"Weight steps per architecture step." default:"5"`
	LR             float64 `help:"Weight learning rate (cosine to 0 over the search epochs)." default:"0.025"`
	WarmupLR       float64 `name:"warmup-lr" help:"Weight learning rate of the warm-up cosine." default:"0.05"`
	WeightDecay    float64 `name:"weight-decay" default:"4e-5" help:"L2 on the weights."`
	LabelSmoothing float64 `name:"label-smoothing" default:"0.1" help:"Label smoothing of the weight steps."`
	ArchLR         float64 `name:"arch-lr" help:"Adam learning rate of the architecture parameters." default:"1e-3"`
	Seed           int64   `help:"Seed of weights, architecture parameters, sampling and data order." default:"0"`
	Threads        int     `help:"Worker threads (0 = all cores)." default:"0"`
	Backend        string  `help:"GoMLX backend spec, name[:config] (compiled in: ${backends}); default: pnas, the built-in CPU backend (pnas:parallelism=N). E.g. go (GoMLX simplego), go:ops_sequential, or xla:cpu / xla:cuda in a build with -tags xla." placeholder:"SPEC"`

	Output          string `short:"o" help:"Run directory: checkpoints, logs, plots and the derived model." placeholder:"RUNDIR"`
	Resume          string `help:"Continue the search in RUNDIR from its last checkpoint." placeholder:"RUNDIR"`
	CheckpointEvery int    `name:"checkpoint-every" help:"Weight steps between checkpoints." default:"50"`
	BNImages        int    `name:"bn-images" help:"Training images used to re-estimate the derived network's BN statistics (0 = keep the supernet's)." default:"2000"`
	StopAfter       int    `name:"stop-after" help:"Stop (with a checkpoint) after N weight steps of this invocation; resume later." default:"0" hidden:""`

	fastest, slowest float64 // the table's fastest and slowest network of the space, µs
}

// Help gives examples.
func (SearchCmd) Help() string {
	return `Trains a ProxylessNAS supernet on the data (binarized paths: one candidate
per layer runs per step), learns the architecture parameters on a held-out
part of the training split against the target's latency table, trains the
argmax network alone for --train-epochs more, starting from the supernet's
weights, and derives the network: RUNDIR/model.json (+ .safetensors) with provenance, a JSONL log
per epoch, PNG plots (alpha.png, arch.png, latency-accuracy.png) and
checkpoints. Ctrl-C saves a checkpoint; --resume RUNDIR continues and gives
the same result as an uninterrupted run.

Examples:
  pnas search --data fashion-mnist-subset --warmup-epochs 1 --epochs 2 -o runs/quick
  pnas search --space fmnist --target amd64 --latency-target 300us -o runs/fmnist
  pnas search --candidates k3e3,k5e6,zero --gates two -o runs/small
  pnas search --resume runs/fmnist`
}

// The run directory's log and its records, as package search writes them.
const logFile = search.LogFile

type epochRecord = search.EpochRecord

func readEpochs(path string) ([]epochRecord, error) { return search.ReadEpochs(path) }

// parseMicros reads "80us", "80µs", "1.2ms" or "0.5s" as microseconds. A
// number without a unit is an error: it would be ambiguous.
func parseMicros(s string) (float64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		scale  float64
	}{{"us", 1}, {"µs", 1}, {"ms", 1e3}, {"s", 1e6}}
	scale, num := 0.0, s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, scale = strings.TrimSuffix(s, u.suffix), u.scale
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || scale == 0 || !(v > 0) || math.IsInf(v, 0) {
		return 0, &exitError{code: 2, err: fmt.Errorf("--latency-target: expected a positive duration with a unit (us, ms or s) such as 80us or 1.2ms, got %q", s)}
	}
	return v * scale, nil
}

// configFlags names the flag behind each search.Config field the command
// sets, so that an invalid value is reported in the user's terms.
var configFlags = map[string]string{
	"BatchSize": "--batch", "ArchBatchSize": "--arch-batch", "WarmupEpochs": "--warmup-epochs", "SearchEpochs": "--epochs",
	"TrainEpochs": "--train-epochs", "ArchEvery": "--arch-every", "Parallelism": "--threads", "WarmupLR": "--warmup-lr",
	"LR": "--lr", "TrainLR": "--train-lr", "WeightDecay": "--weight-decay", "LabelSmoothing": "--label-smoothing",
	"ArchLR": "--arch-lr", "GateMode": "--gates", "Derive": "--derive", "Sharing": "--share", "LatencyLoss": "--loss", "TargetLatency": "--latency-target",
	"LatencyA": "--loss-a", "LatencyBeta": "--loss-beta", "LatencyLambda": "--loss-lambda",
}

// flagError rewrites a search.Config validation error ("search config:
// Field: message") as a usage error naming the flag.
func flagError(err error) error {
	if err == nil {
		return nil
	}
	rest, ok := strings.CutPrefix(err.Error(), "search config: ")
	if !ok {
		return err
	}
	field, msg, ok := strings.Cut(rest, ": ")
	if flag, known := configFlags[field]; ok && known {
		return &exitError{code: 2, err: fmt.Errorf("%s: %s", flag, msg)}
	}
	return err
}

// checkFlags checks the flags of a new search before anything is read or
// written: out-of-range values are usage errors named by their flags.
func (c *SearchCmd) checkFlags() error {
	for _, f := range []struct {
		flag   string
		v, min int
	}{
		{"--train-limit", c.TrainLimit, 0}, {"--held-out", c.HeldOut, 0}, {"--bn-images", c.BNImages, 0},
		{"--checkpoint-every", c.CheckpointEvery, 1}, {"--stop-after", c.StopAfter, 0}, {"--epochs", c.Epochs, 1},
	} {
		if f.v < f.min {
			return &exitError{code: 2, err: fmt.Errorf("%s: expected >= %d, got %d", f.flag, f.min, f.v)}
		}
	}
	if c.LatencyTarget != "" {
		if _, err := parseMicros(c.LatencyTarget); err != nil {
			return err
		}
	}
	cfg := c.baseConfig()
	if c.usesTable() {
		cfg.TargetLatency = 100 // checked against the table later
	}
	return flagError(cfg.Validate())
}

// usesTable says whether the search reads latencies: a latency loss, the
// reinforce reward or the budget derivation.
func (c *SearchCmd) usesTable() bool {
	return c.Loss != search.LossNone || c.Gates == search.GateReinforce || c.Derive == search.DeriveBudget
}

// loadTable resolves the latency table: --lut, else the target's
// (--target, by default amd64). The search's target is then the table's:
// the derived network records it, and a --target that names another one
// than a --lut table's is a usage error. A resumed search takes the
// table's target whatever its saved flags said.
func (c *SearchCmd) loadTable(resume bool) (*targets.LUT, string, error) {
	target := c.Target
	if target == "" && c.LUT == "" {
		target = defaultSearchTarget
	}
	l, err := loadLUT(c.LUT, target, c.Space)
	if err != nil {
		return nil, "", err
	}
	if c.Target != "" && c.Target != l.Target && !resume {
		return nil, "", &exitError{code: 2, err: fmt.Errorf("--target %s: the table %s was measured for target %s; leave out --target or give --target %s",
			c.Target, c.LUT, l.Target, l.Target)}
	}
	c.Target = l.Target
	return l, c.LUT, nil
}

// defaultSearchTarget is the target whose built-in table a search without
// --lut or --target reads.
const defaultSearchTarget = "amd64"

// loadLUT loads the latency table file when one is named, else the
// table of the target (resolveTarget: "" is this machine's best), with a
// hint on building one when the target has none for the space.
func loadLUT(file, target, space string) (*targets.LUT, error) {
	if file != "" {
		return targets.Load(file)
	}
	t, err := resolveTarget(target)
	if err != nil {
		return nil, err
	}
	l, err := t.LoadLUT()
	if err != nil {
		return nil, fmt.Errorf("%w; build one with 'pnas profile --space %s --target %s -o TABLE.json' and pass --lut TABLE.json", err, space, t.Name)
	}
	return l, nil
}

// baseConfig is the configuration the flags give, without the target
// latency.
func (c *SearchCmd) baseConfig() search.Config {
	cfg := search.DefaultConfig()
	cfg.Seed = c.Seed
	cfg.BatchSize, cfg.ArchBatchSize = c.Batch, c.ArchBatch
	cfg.WarmupEpochs, cfg.SearchEpochs, cfg.TrainEpochs, cfg.TrainLR = c.WarmupEpochs, c.Epochs, c.TrainEpochs, c.TrainLR
	cfg.LR, cfg.WarmupLR, cfg.WeightDecay, cfg.LabelSmoothing = c.LR, c.WarmupLR, c.WeightDecay, c.LabelSmoothing
	cfg.ArchLR, cfg.ArchEvery, cfg.GateMode, cfg.Derive, cfg.Sharing = c.ArchLR, c.ArchEvery, c.Gates, c.Derive, c.Share
	cfg.RLSamples, cfg.RLLatencyWeight = c.RLSamples, c.RLWeight
	cfg.LatencyLoss, cfg.LatencyA, cfg.LatencyBeta, cfg.LatencyLambda = c.Loss, c.LossA, c.LossBeta, c.LossLambda
	cfg.Parallelism, cfg.Backend = c.Threads, c.Backend
	return cfg
}

// config is the search's configuration: the flags' plus the target
// latency, which no network of the space may be unable to meet: a target
// below the table's fastest network is a usage error naming the fastest
// and the slowest.
func (c *SearchCmd) config(plan *space.Plan, lat search.LatencyTable) (search.Config, error) {
	cfg := c.baseConfig()
	if c.usesTable() {
		lm, err := search.NewLatencyModel(plan, lat)
		if err != nil {
			return cfg, err
		}
		fast, slow := extremes(plan, lm)
		c.fastest, c.slowest = fast, slow
		if c.LatencyTarget != "" {
			t, err := reachableTarget(c.LatencyTarget, plan, lat.ID(), fast, slow)
			if err != nil {
				return cfg, err
			}
			cfg.TargetLatency = t
		} else {
			cfg.TargetLatency = math.Sqrt(fast * slow)
		}
	}
	return cfg, flagError(cfg.Validate())
}

// reachableTarget parses --latency-target; a target below the fastest
// network of the space (fast, under table id) is a usage error that names
// the fastest and the slowest.
func reachableTarget(flag string, plan *space.Plan, id string, fast, slow float64) (float64, error) {
	t, err := parseMicros(flag)
	if err != nil {
		return 0, err
	}
	if t < fast {
		return 0, &exitError{code: 2, err: fmt.Errorf("--latency-target %s: unreachable: the fastest network of space %s under table %s takes %.1f µs (the slowest %.1f µs); choose a target between them",
			flag, plan.Space.Name, id, fast, slow)}
	}
	return t, nil
}

// extremes returns the latency of the fastest and the slowest network of
// the space under the table (latency is additive over layers).
func extremes(plan *space.Plan, lm *search.LatencyModel) (float64, float64) {
	lo := make([]int, len(plan.Layers))
	hi := make([]int, len(plan.Layers))
	for l, layer := range plan.Layers {
		best, worst := math.Inf(1), math.Inf(-1)
		for j := range layer.Candidates {
			choice := make([]int, len(plan.Layers))
			copy(choice, lo)
			choice[l] = j
			v := lm.Of(choice)
			if v < best {
				best, lo[l] = v, j
			}
			if v > worst {
				worst, hi[l] = v, j
			}
		}
	}
	return lm.Of(lo), lm.Of(hi)
}

// Run searches.
func (c *SearchCmd) Run(g *globals) error {
	rd, err := c.settings()
	if err != nil {
		return err
	}
	resume := rd != nil
	dir := c.Output
	if resume {
		dir = rd.Path
	}
	if err := c.checkFlags(); err != nil {
		return err
	}

	// the space and its candidates
	var sp *space.Space
	if resume {
		sp = rd.Settings.Space
	} else {
		if sp, err = space.Open(c.Space); err != nil {
			return err
		}
		if c.Candidates != "" {
			sp = sp.Clone()
			sp.Candidates = strings.Split(c.Candidates, ",")
		}
	}
	plan, err := sp.Plan()
	if err != nil {
		return err
	}
	// the latency table
	var (
		lut   *targets.LUT
		lat   search.LatencyTable
		lfile string
	)
	if c.usesTable() || !resume {
		lut, lfile, err = c.loadTable(resume)
		if err != nil {
			return err
		}
		lat = lut.SearchTable()
	}
	if c.Target == "" {
		c.Target = defaultSearchTarget
	}

	var cfg search.Config
	if !resume {
		if cfg, err = c.config(plan, lat); err != nil {
			return err
		}
	}
	d, err := c.data(plan)
	if err != nil {
		return err
	}

	var s *search.Searcher
	if resume {
		if s, err = rd.Resume(lat, search.Placement{Backend: c.Backend, Parallelism: c.Threads}); err != nil {
			return err
		}
	} else {
		if s, err = search.New(plan, cfg, lat); err != nil {
			return err
		}
		args, _ := json.Marshal(c)
		rd, err = search.CreateRun(dir, search.RunSettings{Args: args, TableFile: lfile, Started: time.Now().UTC().Truncate(time.Second)}, s)
		if err != nil {
			s.Close()
			return err
		}
	}
	defer s.Close()
	// The command owns the process: on simplego each step may run under
	// its own memory budget.
	s.ManageProcessMemory()
	cfg = s.Config()
	pos := s.Position()

	iters := d.Train.Len() / cfg.BatchSize
	total := (cfg.WarmupEpochs + cfg.SearchEpochs + cfg.TrainEpochs) * iters
	fmt.Fprintf(g.stdout, "search %s: space %s (%d searchable layers, %.3g networks), %d training / %d held-out images of %s\n",
		dir, sp.Name, len(plan.Layers), plan.NumChoices(), d.Train.Len(), d.Held.Len(), c.Data)
	if lat != nil {
		fmt.Fprintf(g.stdout, "latency table %s (target %s), loss %s, target latency %.1f µs", lat.ID(), c.Target, cfg.LatencyLoss, cfg.TargetLatency)
		if c.slowest > 0 {
			fmt.Fprintf(g.stdout, " (the table's networks take %.1f to %.1f µs)", c.fastest, c.slowest)
		}
		fmt.Fprintln(g.stdout)
	}
	fmt.Fprintf(g.stdout, "schedule: %d warm-up + %d search + %d train epochs of %d steps (batch %d), gates %s, arch step every %d steps\n",
		cfg.WarmupEpochs, cfg.SearchEpochs, cfg.TrainEpochs, iters, cfg.BatchSize, cfg.GateMode, cfg.ArchEvery)
	if resume {
		fmt.Fprintf(g.stdout, "resuming at epoch %d, step %d of %d\n", pos.Epoch, pos.WeightSteps, total)
	}

	// Ctrl-C (or SIGTERM) during the search stops it with a checkpoint;
	// before and after, the signal ends the process as usual (the derived
	// model is written atomically)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := progress.New("search", total)
	bar.Resume(int(pos.WeightSteps))
	defer bar.Done()
	var lastE float64
	err = rd.Run(ctx, s, d, search.RunOptions{
		CheckpointEvery: c.CheckpointEvery,
		StopAfter:       c.StopAfter,
		Step: func(si search.StepInfo) {
			if si.Arch != nil {
				lastE = si.Arch.ExpectedLatency
			}
			bar.Add(1)
			status := fmt.Sprintf("loss %.3f acc %.3f", si.Weight.Loss, si.Weight.Accuracy)
			if lastE > 0 {
				status += fmt.Sprintf(" E[LAT] %.1fµs", lastE)
			}
			bar.SetStatus("%s", status)
		},
		Epoch: func(e search.EpochRecord) {
			kind := "search"
			switch {
			case e.Warmup:
				kind = "warm-up"
			case e.Train:
				kind = "train"
			}
			bar.SetStatus("epoch %d (%s): held-out acc %.3f, argmax %.1fµs", e.Epoch, kind, e.HeldOutAccuracy, e.ArgmaxLatencyUS)
		},
	})
	bar.Done()
	stop()
	if errors.Is(err, search.ErrStopped) || errors.Is(err, context.Canceled) {
		p := s.Position()
		fmt.Fprintf(g.stdout, "stopped at step %d of %d; checkpoint saved; continue with: pnas search --resume %s\n", p.WeightSteps, total, dir)
		if errors.Is(err, context.Canceled) {
			return &exitError{code: 130, err: fmt.Errorf("interrupted")}
		}
		return nil
	}
	if err != nil {
		return err
	}
	return c.derive(g, rd, s, plan, d, lut, rd.Path)
}

// settings resolves the run directory: for --resume, it reads the run's
// settings into c (only where the search runs may change: threads,
// backend, --stop-after) and returns the run; for a new search it checks
// -o and returns nil.
func (c *SearchCmd) settings() (*search.RunDir, error) {
	switch {
	case c.Resume != "" && c.Output != "" && c.Output != c.Resume:
		return nil, &exitError{code: 2, err: fmt.Errorf("--resume %s and -o %s: give one run directory", c.Resume, c.Output)}
	case c.Resume != "":
		rd, err := search.OpenRun(c.Resume)
		if err != nil {
			return nil, fmt.Errorf("--resume: %w", err)
		}
		var args SearchCmd
		if err := json.Unmarshal(rd.Settings.Args, &args); err != nil {
			return nil, fmt.Errorf("%s: args: %v", filepath.Join(rd.Path, search.RunFile), err)
		}
		// Where the search runs may change on resume; what it computes
		// may not.
		stop, threads, backend := c.StopAfter, c.Threads, c.Backend
		*c = args
		c.StopAfter = stop
		if threads != 0 {
			c.Threads = threads
		}
		if backend != "" {
			c.Backend = backend
		}
		if c.LUT == "" && rd.Settings.TableFile != "" {
			c.LUT = rd.Settings.TableFile
		}
		return rd, nil
	case c.Output == "":
		return nil, &exitError{code: 2, err: fmt.Errorf("-o RUNDIR: expected a run directory (or --resume RUNDIR)")}
	case search.HasRun(c.Output):
		return nil, fmt.Errorf("%s already holds a search; continue it with --resume %s or choose another -o", c.Output, c.Output)
	}
	return nil, nil
}

// data opens the training split minus a held-out part; the test split is
// not read.
func (c *SearchCmd) data(plan *space.Plan) (search.Data, error) {
	in := plan.Stem.In
	trainAll, err := data.Open(c.Data, "train", in.C, in.H, in.W)
	if err != nil {
		return search.Data{}, err
	}
	if c.TrainLimit > 0 && c.TrainLimit < trainAll.Len() {
		idx := make([]int, c.TrainLimit)
		for i := range idx {
			idx[i] = i
		}
		trainAll = trainAll.Subset(idx)
	}
	nHeld := c.HeldOut
	if nHeld == 0 {
		nHeld = min(trainAll.Len()/10, 5000)
	}
	train, held, err := data.HoldOut(trainAll, nHeld, c.Seed)
	if err != nil {
		return search.Data{}, err
	}
	d := search.Data{Train: train, Held: held, Norm: train.Stats()}
	if c.Augment {
		d.Aug = &data.Augment{Pad: 2, Flip: true}
	}
	return d, nil
}

// derive re-estimates BN statistics for the chosen path, measures the
// held-out accuracy as the model will run (running statistics), writes the
// derived model and the plots, and reports.
// derive reads the network off the finished search s, re-estimates its BN
// statistics, and writes it with its plots into dir.
func (c *SearchCmd) derive(g *globals, rd *search.RunDir, s *search.Searcher, plan *space.Plan, d search.Data, lut *targets.LUT, dir string) error {
	arg := s.Chosen()
	if c.BNImages > 0 {
		if err := s.RecalibrateBN(d.Train, d.Norm, arg, c.BNImages); err != nil {
			return err
		}
	}
	final, err := s.Evaluate(d.Held, d.Norm, arg, true)
	if err != nil {
		return err
	}
	m, err := s.Derive(search.DeriveOptions{Name: plan.Space.Name + "-searched", Mean: d.Norm.Mean, Std: d.Norm.Std, Labels: d.Train.Classes, Target: c.Target})
	if err != nil {
		return err
	}
	m.Metadata.Accuracy = append(m.Metadata.Accuracy, ir.Accuracy{Data: c.Data, Split: "heldout", N: final.N, Top1: final.Accuracy})
	modelPath := filepath.Join(dir, "model.json")
	if err := ir.Save(m, modelPath); err != nil {
		return err
	}
	recs, _ := rd.Epochs()
	alphas, err := rd.Alphas()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(g.stderr, "warning: %v\n", err)
	}
	written, err := writePlots(dir, plan, m, recs, alphas, c.Target)
	if err != nil {
		fmt.Fprintf(g.stderr, "warning: plots: %v\n", err)
	}
	fmt.Fprintf(g.stdout, "derived: %s\n", strings.Join(m.Metadata.Search.Choices, " "))
	if lut != nil {
		if pred, err := lut.PredictModel(m); err == nil {
			fmt.Fprintf(g.stdout, "predicted latency %.1f µs (table %s)\n", pred, lut.ID())
			if note := latencyMissNote(pred, s.Config()); note != "" {
				fmt.Fprintln(g.stdout, note)
			}
		}
	}
	fmt.Fprintf(g.stdout, "held-out accuracy of the derived network: %.4f (%d images, BN running statistics)\n", final.Accuracy, final.N)
	fmt.Fprintf(g.stdout, "wrote %s\n", strings.Join(append([]string{modelPath}, written...), ", "))
	fmt.Fprintln(g.stdout, modelPath)
	return nil
}

// writePlots renders alpha.png (when there were architecture steps),
// arch.png and latency-accuracy.png (when an epoch had a latency) and
// returns the paths it wrote.
func writePlots(dir string, plan *space.Plan, m *ir.Model, recs []search.EpochRecord, alphas []search.AlphaRecord, target string) ([]string, error) {
	var (
		errs    []error
		written []string
	)
	png := func(name string, render func() ([]byte, error)) {
		path := filepath.Join(dir, name)
		if err := writePNG(path, render); err != nil {
			errs = append(errs, err)
			return
		}
		written = append(written, path)
	}
	if len(alphas) > 0 {
		// candidates of the widest layer name the lines; layers without Zero have one fewer
		var names []string
		for _, layer := range plan.Layers {
			if len(layer.Candidates) > len(names) {
				names = nil
				for _, c := range layer.Candidates {
					names = append(names, c.Name())
				}
			}
		}
		h := plots.AlphaHistory{Candidates: names}
		for _, layer := range plan.Layers {
			h.Layers = append(h.Layers, fmt.Sprintf("s%d.l%d", layer.Stage, layer.Pos))
		}
		h.Probs = make([][][]float64, len(plan.Layers))
		for _, a := range alphas {
			h.Steps = append(h.Steps, float64(a.Step))
			for l := range plan.Layers {
				h.Probs[l] = append(h.Probs[l], a.Probs[l])
			}
		}
		png("alpha.png", func() ([]byte, error) { return plots.Alpha(h) })
		// the weight steps before the first architecture step: the
		// warm-up, and the first search epoch when it skips them
		var fixed float64
		label := ""
		for _, r := range recs {
			if r.ArchSteps > 0 {
				break
			}
			fixed = float64(r.WeightSteps)
			if !r.Warmup {
				label = "warm-up and first search epoch (alpha fixed)"
			}
		}
		png("alpha-logodds.png", func() ([]byte, error) { return plots.AlphaLogOdds(h, fixed, label) })
	}
	blocks, err := archBlocks(m, plan)
	if err != nil {
		return written, err
	}
	title := fmt.Sprintf("%s on %s: %s", plan.Space.Name, target, m.Name)
	png("arch.png", func() ([]byte, error) { return plots.Architecture(title, blocks) })
	var pts []plots.Point
	train := 0
	for _, r := range recs {
		if r.ArgmaxLatencyUS > 0 {
			label := fmt.Sprintf("e%d", r.Epoch)
			if r.Train {
				train++
				label = fmt.Sprintf("t%d", train)
			}
			pts = append(pts, plots.Point{Label: label, LatencyUS: r.ArgmaxLatencyUS, Accuracy: r.HeldOutAccuracy})
		}
	}
	if len(pts) > 0 {
		png("latency-accuracy.png", func() ([]byte, error) {
			return plots.LatencyAccuracy("argmax network after each epoch (held-out accuracy; e: search, t: train epochs)", pts)
		})
	}
	return written, errors.Join(errs...)
}

// archBlocks lists the derived network's blocks for the architecture plot,
// with the skipped layers marked.
func archBlocks(m *ir.Model, plan *space.Plan) ([]plots.ArchBlock, error) {
	refs, err := archnet.Blocks(m)
	if err != nil {
		return nil, err
	}
	byLayer := map[[2]int]archnet.BlockRef{}
	for _, r := range refs {
		byLayer[[2]int{r.Block.Stage, r.Block.Layer}] = r
	}
	mk := func(r archnet.BlockRef) plots.ArchBlock {
		b := plots.ArchBlock{Out: r.Out}
		switch r.Part {
		case archnet.Stem:
			b.Label = "stem conv"
		case archnet.Head:
			b.Label = "head 1x1"
		case archnet.Classifier:
			b.Label = "pool + fc"
		case archnet.MBConv:
			k, e := r.Candidate.Kernel, r.Candidate.Expand
			b.Kernel, b.Expand = k, e
			b.Label = fmt.Sprintf("MB%d %dx%d", e, k, k)
		}
		return b
	}
	var out []plots.ArchBlock
	out = append(out, mk(byLayer[[2]int{0, 0}]), mk(byLayer[[2]int{0, 1}]))
	for _, layer := range plan.Layers {
		r, ok := byLayer[[2]int{layer.Stage, layer.Pos}]
		if !ok {
			out = append(out, plots.ArchBlock{Label: "zero", Zero: true})
			continue
		}
		out = append(out, mk(r))
	}
	out = append(out, mk(byLayer[[2]int{-1, 0}]), mk(byLayer[[2]int{-1, 1}]))
	return out, nil
}

// latencyMissNote explains a derived network whose predicted latency is
// more than 10% above the search's target: the latency losses are soft
// pressures whose pull grows with the length of the search and with their
// strength. Empty when the target is met or the search had no target.
func latencyMissNote(pred float64, cfg search.Config) string {
	t := cfg.TargetLatency
	if t <= 0 || pred <= 1.1*t || (cfg.LatencyLoss == search.LossNone && cfg.GateMode != search.GateReinforce) {
		return ""
	}
	var how string
	switch {
	case cfg.GateMode == search.GateReinforce:
		how = fmt.Sprintf("a more negative --rl-weight (now %g)", cfg.RLLatencyWeight)
	case cfg.LatencyLoss == search.LossMulLog:
		how = fmt.Sprintf("a larger --loss-beta (now %g) or --loss add#linear with a larger --loss-lambda", cfg.LatencyBeta)
	default:
		how = fmt.Sprintf("a larger --loss-lambda (now %g)", cfg.LatencyLambda)
	}
	return fmt.Sprintf("note: the predicted latency is %.2fx the target %.1f µs. The latency loss is a soft pressure on the architecture "+
		"parameters; a longer search (more --epochs, a larger --arch-lr) or %s pulls harder toward the target.", pred/t, t, how)
}
