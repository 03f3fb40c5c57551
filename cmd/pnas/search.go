package main

import (
	"bufio"
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

	Target        string  `help:"Target whose latency table the search optimises against." default:"amd64"`
	LUT           string  `name:"lut" help:"Latency table file (default: the target's)." type:"existingfile" placeholder:"TABLE.json"`
	LatencyTarget string  `name:"latency-target" help:"Target latency T, e.g. 80us or 1.2ms (default: the geometric mean of the fastest and slowest network in the table)." placeholder:"DURATION"`
	Loss          string  `help:"Latency loss: mul#log (a*CE*(ln E/ln T)^beta), add#linear (CE + lambda*(E-T)/T) or none." default:"mul#log" enum:"mul#log,add#linear,none"`
	LossA         float64 `name:"loss-a" help:"a of mul#log." default:"0.2"`
	LossBeta      float64 `name:"loss-beta" help:"beta of mul#log." default:"0.3"`
	LossLambda    float64 `name:"loss-lambda" help:"lambda of add#linear." default:"0.1"`

	Gates          string  `help:"Gate gradient: full_v2, two (two paths, rescaled) or all (every candidate weighted, DARTS-style)." default:"full_v2" enum:"full_v2,two,all"`
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

// searchRun is what RUNDIR/search.json holds: every setting of the run, so
// that --resume continues with exactly the same ones.
type searchRun struct {
	Args      SearchCmd     `json:"args"`
	Space     *space.Space  `json:"space"`
	Config    search.Config `json:"config"`
	Table     string        `json:"latency_table"`
	TableFile string        `json:"latency_table_file,omitempty"`
	Started   time.Time     `json:"started"`
}

// epochRecord is one line of RUNDIR/log.jsonl.
type epochRecord struct {
	Epoch             int         `json:"epoch"`
	Warmup            bool        `json:"warmup"`
	Train             bool        `json:"train,omitempty"`
	WeightSteps       int64       `json:"weight_steps"`
	ArchSteps         int64       `json:"arch_steps"`
	TrainLoss         float64     `json:"train_loss"`
	TrainAccuracy     float64     `json:"train_accuracy"`
	ArchLoss          float64     `json:"arch_loss,omitempty"`
	HeldOutLoss       float64     `json:"heldout_loss"`
	HeldOutAccuracy   float64     `json:"heldout_accuracy"`
	Argmax            []string    `json:"argmax"`
	ArgmaxLatencyUS   float64     `json:"argmax_latency_us"`
	ArgmaxMACs        int64       `json:"argmax_macs"`
	ExpectedLatencyUS float64     `json:"expected_latency_us"`
	Entropy           []float64   `json:"entropy"`
	Probs             [][]float64 `json:"probs"`
	Seconds           float64     `json:"seconds"`
}

// alphaRecord is one line of RUNDIR/alpha.jsonl (after each architecture step).
type alphaRecord struct {
	Step  int64       `json:"step"`
	Probs [][]float64 `json:"probs"`
}

// epochSums are the running sums behind an epoch's mean training loss,
// saved beside every checkpoint (keyed by step) so a resumed epoch reports
// the same means as an uninterrupted one.
type epochSums struct {
	Step        int64   `json:"step"`
	Epoch       int     `json:"epoch"`
	LossSum     float64 `json:"loss_sum"`
	AccSum      float64 `json:"acc_sum"`
	ArchLossSum float64 `json:"arch_loss_sum"`
	Steps       int     `json:"steps"`
	ArchSteps   int     `json:"arch_steps"`
	Seconds     float64 `json:"seconds"`
}

const (
	sumsFile  = "sums.json"
	runFile   = "search.json"
	ckptFile  = "checkpoint.bin"
	logFile   = "log.jsonl"
	alphaFile = "alpha.jsonl"
)

// parseMicros reads "80us", "80µs", "1.2ms", "0.5s" or a plain number of
// microseconds.
func parseMicros(s string) (float64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		scale  float64
	}{{"us", 1}, {"µs", 1}, {"ms", 1e3}, {"s", 1e6}}
	scale := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, scale = strings.TrimSuffix(s, u.suffix), u.scale
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("--latency-target: expected a positive duration such as 80us or 1.2ms, got %q", s)
	}
	return v * scale, nil
}

// loadTable resolves the latency table: --lut, else the target's.
func (c *SearchCmd) loadTable() (*targets.LUT, string, error) {
	if c.LUT != "" {
		l, err := targets.Load(c.LUT)
		return l, c.LUT, err
	}
	t, err := targets.Lookup(c.Target)
	if err != nil {
		return nil, "", err
	}
	l, err := t.LoadLUT()
	if err != nil {
		return nil, "", fmt.Errorf("%w; build one with 'pnas profile --space %s --target %s -o TABLE.json' and pass --lut TABLE.json", err, c.Space, c.Target)
	}
	return l, "", nil
}

// searchTable is the table the search reads: the LUT entries scaled by the
// table's fitted whole-network correction, if it has one, with the
// correction's fixed per-inference overhead c0 counted in the classifier
// (Logits) entry that every network has once, so that E[LAT] is the
// predictor's whole-network latency.
func searchTable(l *targets.LUT) search.LatencyTable {
	if l.Correction != nil {
		return overheadTable{l.Corrected()}
	}
	return l
}

type overheadTable struct{ *targets.CorrectedTable }

func (t overheadTable) Lookup(key string) (float64, bool) {
	v, ok := t.CorrectedTable.Lookup(key)
	if o := t.Overhead(); ok && o > 0 && targets.KeyType(key) == "Logits" {
		v += o
	}
	return v, ok
}

func (c *SearchCmd) config(plan *space.Plan, lat search.LatencyTable) (search.Config, error) {
	cfg := search.DefaultConfig()
	cfg.Seed = c.Seed
	cfg.BatchSize, cfg.ArchBatchSize = c.Batch, c.ArchBatch
	cfg.WarmupEpochs, cfg.SearchEpochs, cfg.TrainEpochs, cfg.TrainLR = c.WarmupEpochs, c.Epochs, c.TrainEpochs, c.TrainLR
	cfg.LR, cfg.WarmupLR, cfg.WeightDecay, cfg.LabelSmoothing = c.LR, c.WarmupLR, c.WeightDecay, c.LabelSmoothing
	cfg.ArchLR, cfg.ArchEvery, cfg.GateMode = c.ArchLR, c.ArchEvery, c.Gates
	cfg.LatencyLoss, cfg.LatencyA, cfg.LatencyBeta, cfg.LatencyLambda = c.Loss, c.LossA, c.LossBeta, c.LossLambda
	cfg.Parallelism, cfg.Backend = c.Threads, c.Backend
	if c.Loss != search.LossNone {
		if c.LatencyTarget != "" {
			t, err := parseMicros(c.LatencyTarget)
			if err != nil {
				return cfg, err
			}
			cfg.TargetLatency = t
		} else {
			lm, err := search.NewLatencyModel(plan, lat)
			if err != nil {
				return cfg, err
			}
			fast, slow := extremes(plan, lm)
			cfg.TargetLatency = math.Sqrt(fast * slow)
		}
	}
	return cfg, cfg.Validate()
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
	var (
		run    searchRun
		dir    string
		resume = c.Resume != ""
	)
	switch {
	case resume && c.Output != "" && c.Output != c.Resume:
		return &exitError{code: 2, err: fmt.Errorf("--resume %s and -o %s: give one run directory", c.Resume, c.Output)}
	case resume:
		dir = c.Resume
		b, err := os.ReadFile(filepath.Join(dir, runFile))
		if err != nil {
			return fmt.Errorf("--resume: %w (not a run directory?)", err)
		}
		if err := json.Unmarshal(b, &run); err != nil {
			return fmt.Errorf("%s: %v", filepath.Join(dir, runFile), err)
		}
		// Where the search runs may change on resume; what it computes
		// may not.
		stop, threads, backend := c.StopAfter, c.Threads, c.Backend
		*c = run.Args
		c.StopAfter = stop
		if threads != 0 {
			c.Threads = threads
		}
		if backend != "" {
			c.Backend = backend
		}
		if c.LUT == "" && run.TableFile != "" {
			c.LUT = run.TableFile
		}
	case c.Output == "":
		return &exitError{code: 2, err: fmt.Errorf("-o RUNDIR: expected a run directory (or --resume RUNDIR)")}
	default:
		dir = c.Output
		if _, err := os.Stat(filepath.Join(dir, runFile)); err == nil {
			return fmt.Errorf("%s already holds a search; continue it with --resume %s or choose another -o", dir, dir)
		}
	}
	if c.CheckpointEvery <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--checkpoint-every: expected a positive number of steps, got %d", c.CheckpointEvery)}
	}

	// the space and its candidates
	sp := run.Space
	if sp == nil {
		var err error
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

	// data: the training split minus a held-out part; the test split is not read
	in := plan.Stem.In
	trainAll, err := data.Open(c.Data, "train", in.C, in.H, in.W)
	if err != nil {
		return err
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
		return err
	}
	norm := train.Stats()
	var aug *data.Augment
	if c.Augment {
		aug = &data.Augment{Pad: 2, Flip: true}
	}

	// the latency table
	var (
		lut   *targets.LUT
		lat   search.LatencyTable
		lfile string
	)
	if c.Loss != search.LossNone || !resume {
		lut, lfile, err = c.loadTable()
		if err != nil {
			return err
		}
		lat = searchTable(lut)
	}

	var s *search.Searcher
	if resume {
		s, err = search.LoadOn(filepath.Join(dir, ckptFile), lat, search.Runtime{Backend: c.Backend, Parallelism: c.Threads})
		if err != nil {
			return err
		}
	} else {
		cfg, err := c.config(plan, lat)
		if err != nil {
			return err
		}
		s, err = search.New(plan, cfg, lat)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			s.Close()
			return err
		}
		run = searchRun{Args: *c, Space: sp, Config: cfg, Started: time.Now().UTC().Truncate(time.Second), TableFile: lfile}
		if lat != nil {
			run.Table = lat.ID()
		}
		b, _ := json.MarshalIndent(run, "", "  ")
		if err := ir.WriteFileAtomic(filepath.Join(dir, runFile), append(b, '\n')); err != nil {
			return err
		}
		for _, f := range []string{logFile, alphaFile} {
			os.Remove(filepath.Join(dir, f))
		}
		if err := s.Save(filepath.Join(dir, ckptFile)); err != nil {
			return err
		}
	}
	defer s.Close()
	// The command owns the process: on simplego each step may run under
	// its own memory budget.
	s.ManageProcessMemory()
	cfg := s.Config()
	pos := s.Position()

	// keep only log lines the checkpoint has seen
	if err := truncateJSONL(filepath.Join(dir, logFile), func(line []byte) bool {
		var r epochRecord
		return json.Unmarshal(line, &r) == nil && r.Epoch < pos.Epoch
	}); err != nil {
		return err
	}
	if err := truncateJSONL(filepath.Join(dir, alphaFile), func(line []byte) bool {
		var r alphaRecord
		return json.Unmarshal(line, &r) == nil && r.Step <= pos.WeightSteps
	}); err != nil {
		return err
	}
	logW, err := os.OpenFile(filepath.Join(dir, logFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logW.Close()
	alphaW, err := os.OpenFile(filepath.Join(dir, alphaFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer alphaW.Close()

	iters := train.Len() / cfg.BatchSize
	total := (cfg.WarmupEpochs + cfg.SearchEpochs + cfg.TrainEpochs) * iters
	fmt.Fprintf(g.stdout, "search %s: space %s (%d searchable layers, %.3g networks), %d training / %d held-out images of %s\n",
		dir, sp.Name, len(plan.Layers), plan.NumChoices(), train.Len(), held.Len(), c.Data)
	if lat != nil {
		fmt.Fprintf(g.stdout, "latency table %s (target %s), loss %s, target latency %.1f µs\n", lat.ID(), c.Target, cfg.LatencyLoss, cfg.TargetLatency)
	}
	fmt.Fprintf(g.stdout, "schedule: %d warm-up + %d search + %d train epochs of %d steps (batch %d), gates %s, arch step every %d steps\n",
		cfg.WarmupEpochs, cfg.SearchEpochs, cfg.TrainEpochs, iters, cfg.BatchSize, cfg.GateMode, cfg.ArchEvery)
	if resume {
		fmt.Fprintf(g.stdout, "resuming at epoch %d, step %d of %d\n", pos.Epoch, pos.WeightSteps, total)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := progress.New("search", total)
	bar.Add(int(pos.WeightSteps))
	defer bar.Done()
	var (
		sums       epochSums
		saved      []epochSums // the sums at the last two checkpoints
		epochStart = time.Now()
		startSteps = pos.WeightSteps
		errStopped = errors.New("stopped")
		lastE      float64
	)
	if b, err := os.ReadFile(filepath.Join(dir, sumsFile)); err == nil {
		var prev []epochSums
		if json.Unmarshal(b, &prev) == nil {
			for _, p := range prev {
				if p.Step == pos.WeightSteps && p.Epoch == pos.Epoch {
					sums = p
					epochStart = epochStart.Add(-time.Duration(p.Seconds * float64(time.Second)))
				}
			}
		}
	}
	// checkpoint writes the sums (keeping the previous entry, in case the
	// process dies between the two writes), then the search state.
	checkpoint := func(step int64) error {
		cur := sums
		cur.Step, cur.Epoch = step, s.Position().Epoch
		cur.Seconds = time.Since(epochStart).Seconds()
		saved = append(saved, cur)
		if len(saved) > 2 {
			saved = saved[len(saved)-2:]
		}
		b, _ := json.Marshal(saved)
		if err := ir.WriteFileAtomic(filepath.Join(dir, sumsFile), b); err != nil {
			return err
		}
		return s.Save(filepath.Join(dir, ckptFile))
	}
	hooks := search.Hooks{
		Step: func(si search.StepInfo) error {
			sums.LossSum += si.Weight.Loss
			sums.AccSum += si.Weight.Accuracy
			sums.Steps++
			if si.Arch != nil {
				sums.ArchLossSum += si.Arch.Loss
				sums.ArchSteps++
				lastE = si.Arch.ExpectedLatency
				b, _ := json.Marshal(alphaRecord{Step: si.Position.WeightSteps, Probs: s.Probs()})
				if _, err := alphaW.Write(append(b, '\n')); err != nil {
					return err
				}
			}
			bar.Add(1)
			status := fmt.Sprintf("loss %.3f acc %.3f", si.Weight.Loss, si.Weight.Accuracy)
			if lastE > 0 {
				status += fmt.Sprintf(" E[LAT] %.1fµs", lastE)
			}
			bar.SetStatus("%s", status)
			if si.Position.WeightSteps%int64(c.CheckpointEvery) == 0 {
				if err := checkpoint(si.Position.WeightSteps); err != nil {
					return err
				}
			}
			if c.StopAfter > 0 && si.Position.WeightSteps-startSteps >= int64(c.StopAfter) {
				return errStopped
			}
			return nil
		},
		Epoch: func(ei search.EpochInfo) error {
			rec := epochRecord{
				Epoch: ei.Epoch, Warmup: ei.Warmup, Train: ei.Train, WeightSteps: ei.Position.WeightSteps, ArchSteps: ei.Position.ArchSteps,
				HeldOutLoss: ei.Eval.Loss, HeldOutAccuracy: ei.Eval.Accuracy, Argmax: ei.Argmax,
				ArgmaxLatencyUS: ei.ArgmaxLatency, ArgmaxMACs: ei.ArgmaxMACs, ExpectedLatencyUS: ei.ExpectedLatency,
				Entropy: ei.Entropy, Probs: ei.Probs, Seconds: time.Since(epochStart).Seconds(),
			}
			if sums.Steps > 0 {
				rec.TrainLoss, rec.TrainAccuracy = sums.LossSum/float64(sums.Steps), sums.AccSum/float64(sums.Steps)
			}
			if sums.ArchSteps > 0 {
				rec.ArchLoss = sums.ArchLossSum / float64(sums.ArchSteps)
			}
			sums = epochSums{}
			epochStart = time.Now()
			b, _ := json.Marshal(rec)
			if _, err := logW.Write(append(b, '\n')); err != nil {
				return err
			}
			if err := logW.Sync(); err != nil {
				return err
			}
			if err := checkpoint(ei.Position.WeightSteps); err != nil {
				return err
			}
			kind := "search"
			switch {
			case ei.Warmup:
				kind = "warm-up"
			case ei.Train:
				kind = "train"
			}
			bar.SetStatus("epoch %d (%s): held-out acc %.3f, argmax %.1fµs", ei.Epoch, kind, ei.Eval.Accuracy, ei.ArgmaxLatency)
			return nil
		},
	}
	err = s.Run(ctx, search.Data{Train: train, Held: held, Norm: norm, Aug: aug}, hooks)
	bar.Done()
	if err != nil {
		if errors.Is(err, errStopped) || errors.Is(err, context.Canceled) {
			if serr := checkpoint(s.Position().WeightSteps); serr != nil {
				return serr
			}
			p := s.Position()
			fmt.Fprintf(g.stdout, "stopped at step %d of %d; checkpoint saved; continue with: pnas search --resume %s\n", p.WeightSteps, total, dir)
			if errors.Is(err, context.Canceled) {
				return &exitError{code: 130, err: fmt.Errorf("interrupted")}
			}
			return nil
		}
		return err
	}

	// re-estimate BN statistics for the chosen path, measure the held-out
	// accuracy as the model will run (running statistics), derive
	arg := s.Argmax()
	if c.BNImages > 0 {
		if err := s.RecalibrateBN(train, norm, arg, c.BNImages); err != nil {
			return err
		}
	}
	final, err := s.Evaluate(held, norm, arg, true)
	if err != nil {
		return err
	}
	m, err := s.Derive(search.DeriveOptions{Name: sp.Name + "-searched", Mean: norm.Mean, Std: norm.Std, Labels: train.Classes, Target: c.Target})
	if err != nil {
		return err
	}
	recs, _ := readEpochs(filepath.Join(dir, logFile))
	m.Metadata.Accuracy = append(m.Metadata.Accuracy, ir.Accuracy{Data: c.Data, Split: "heldout", N: final.N, Top1: final.Accuracy})
	modelPath := filepath.Join(dir, "model.json")
	if err := ir.Save(m, modelPath); err != nil {
		return err
	}
	if err := writePlots(dir, plan, m, recs, c.Target); err != nil {
		fmt.Fprintf(g.stderr, "warning: plots: %v\n", err)
	}
	fmt.Fprintf(g.stdout, "derived: %s\n", strings.Join(m.Metadata.Search.Choices, " "))
	if lut != nil {
		if pred, err := lut.PredictModel(m); err == nil {
			fmt.Fprintf(g.stdout, "predicted latency %.1f µs (table %s)\n", pred, lut.ID())
		}
	}
	fmt.Fprintf(g.stdout, "held-out accuracy of the derived network: %.4f (%d images, BN running statistics)\n", final.Accuracy, final.N)
	fmt.Fprintf(g.stdout, "wrote %s, %s, %s, %s\n", modelPath, filepath.Join(dir, "alpha.png"), filepath.Join(dir, "arch.png"), filepath.Join(dir, "latency-accuracy.png"))
	fmt.Fprintln(g.stdout, modelPath)
	return nil
}

// truncateJSONL rewrites path keeping the lines keep accepts (atomically);
// a missing file is fine.
func truncateJSONL(path string, keep func([]byte) bool) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var out []byte
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && keep([]byte(line)) {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return ir.WriteFileAtomic(path, out)
}

func readEpochs(path string) ([]epochRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []epochRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r epochRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return recs, err
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

func readAlpha(path string) ([]alphaRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []alphaRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r alphaRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return recs, err
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// writePlots renders alpha.png, arch.png and latency-accuracy.png.
func writePlots(dir string, plan *space.Plan, m *ir.Model, recs []epochRecord, target string) error {
	alphas, err := readAlpha(filepath.Join(dir, alphaFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
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
		errs = append(errs, writePNG(filepath.Join(dir, "alpha.png"), func() ([]byte, error) { return plots.Alpha(h) }))
	}
	blocks, err := archBlocks(m, plan)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("%s on %s: %s", plan.Space.Name, target, m.Name)
	errs = append(errs, writePNG(filepath.Join(dir, "arch.png"), func() ([]byte, error) { return plots.Architecture(title, blocks) }))
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
		errs = append(errs, writePNG(filepath.Join(dir, "latency-accuracy.png"), func() ([]byte, error) {
			return plots.LatencyAccuracy("argmax network after each epoch (held-out accuracy; e: search, t: train epochs)", pts)
		}))
	}
	return errors.Join(errs...)
}

func writePNG(path string, render func() ([]byte, error)) error {
	b, err := render()
	if err != nil {
		return err
	}
	return ir.WriteFileAtomic(path, b)
}

// archBlocks lists the derived network's blocks for the architecture plot,
// with the skipped layers marked.
func archBlocks(m *ir.Model, plan *space.Plan) ([]plots.ArchBlock, error) {
	refs, err := ir.Blocks(m)
	if err != nil {
		return nil, err
	}
	byLayer := map[[2]int]ir.BlockRef{}
	for _, r := range refs {
		byLayer[[2]int{r.Block.Stage, r.Block.Layer}] = r
	}
	mk := func(r ir.BlockRef) plots.ArchBlock {
		b := plots.ArchBlock{Out: r.Out}
		switch r.Block.Candidate {
		case "stem":
			b.Label = "stem conv"
		case "head":
			b.Label = "head 1x1"
		case "classifier":
			b.Label = "pool + fc"
		default:
			k, e, _ := ir.ParseCandidate(r.Block.Candidate)
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
