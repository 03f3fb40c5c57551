package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pnasml/pnas/internal/atomicfile"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/internal/plots"
	"github.com/pnasml/pnas/internal/progress"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
)

// TrainCmd trains one network with the reference recipe.
type TrainCmd struct {
	Model      string `arg:"" optional:"" help:"Model file (NAME.json) whose architecture to train: from pnas search, pnas sample or pnas train." placeholder:"MODEL.json"`
	Space      string `help:"Search space of the model: a built-in name or a JSON file (default: the space the model names)." placeholder:"SPACE"`
	Init       bool   `help:"Start from the model's weights instead of a fresh initialization."`
	Data       string `help:"Data set: ${datasets}." default:"fashion-mnist"`
	TrainLimit int    `name:"train-limit" help:"Use only the first N training images (0 = all)." default:"0"`
	HeldOut    int    `name:"held-out" help:"Training images held out for model selection (0 = 10%, at most 5,000). The test split is never read." default:"0"`

	Epochs         int     `help:"Training epochs." default:"30"`
	WarmupEpochs   int     `name:"warmup-epochs" help:"Epochs of linear learning-rate warm-up before the cosine." default:"1"`
	Batch          int     `help:"Images per step." default:"128"`
	EvalBatch      int     `name:"eval-batch" help:"Images per batch of the held-out evaluation." default:"250"`
	LR             float64 `help:"Peak learning rate (SGD, Nesterov momentum)." default:"0.1"`
	Momentum       float64 `help:"SGD momentum." default:"0.9"`
	WeightDecay    float64 `name:"weight-decay" help:"L2 on the convolution and linear weights (not on BN or biases)." default:"4e-5"`
	DecayAll       bool    `name:"decay-all" help:"Apply the weight decay to BN parameters and biases too."`
	LabelSmoothing float64 `name:"label-smoothing" help:"Label smoothing of the training loss." default:"0.1"`
	Pad            int     `help:"Random-crop padding in pixels (0 = no crop)." default:"2"`
	Flip           bool    `help:"Random horizontal flip." default:"true" negatable:""`
	Erase          float64 `help:"Random-erasing probability per image (0 = off)." default:"0"`
	BNImages       int     `name:"bn-images" help:"Training images over which BN statistics are re-estimated at the end (0 = keep the running ones)." default:"2000"`
	Seed           int64   `help:"Seed of weights, data order, hold-out split and augmentation." default:"0"`
	Threads        int     `help:"Worker threads (0 = all cores)." default:"0"`
	Backend        string  `help:"GoMLX backend spec, name[:config] (compiled in: ${backends}); default: pnas, the built-in CPU backend; go is GoMLX simplego." placeholder:"SPEC"`

	Output          string `short:"o" help:"Run directory: checkpoint, log.jsonl, training.png and the trained model." placeholder:"RUNDIR"`
	Resume          string `help:"Continue the training in RUNDIR from its last checkpoint." placeholder:"RUNDIR"`
	CheckpointEvery int    `name:"checkpoint-every" help:"Steps between checkpoints (and at every epoch end)." default:"100"`
	StopAfter       int    `name:"stop-after" help:"Stop (with a checkpoint) after N steps of this invocation; resume later." default:"0" hidden:""`
}

// Help gives examples.
func (TrainCmd) Help() string {
	return `Trains the network a model file describes (its search space and the
candidate of every layer, as pnas search, pnas sample and pnas train record
them) with the reference recipe: SGD with Nesterov momentum 0.9, a cosine
learning rate after a linear warm-up, weight decay 4e-5 not on BN or biases,
label smoothing 0.1, random crop (2-pixel padding) and horizontal flip,
optional random erasing. After every epoch the network is evaluated on a
held-out part of the training split (the test split is never read); the
best epoch's weights are kept, their BN statistics re-estimated, and written
as RUNDIR/model.json (+ .safetensors). RUNDIR also holds log.jsonl (one line
per epoch), training.png (loss and accuracy) and checkpoint.bin: Ctrl-C saves
it, --resume RUNDIR continues and ends bit-identical to an uninterrupted run.

Examples:
  pnas train runs/fmnist/model.json -o runs/fmnist-train
  pnas train runs/fmnist/model.json --init --epochs 10 --lr 0.02 -o runs/finetune
  pnas sample --space fmnist --uniform k3e6 -o nets/ && pnas train nets/fmnist-k3e6.json -o runs/k3e6
  pnas train model.json --data fashion-mnist-subset --epochs 2 --batch 32 -o runs/quick
  pnas train --resume runs/fmnist-train`
}

// trainRun is what RUNDIR/train.json holds: every setting of the run.
type trainRun struct {
	Args    TrainCmd     `json:"args"`
	Space   *space.Space `json:"space"`
	Name    string       `json:"name"`
	Target  string       `json:"target,omitempty"`
	Mean    []float32    `json:"mean"`
	Std     []float32    `json:"std"`
	Started time.Time    `json:"started"`
}

// trainRecord is one line of RUNDIR/log.jsonl.
type trainRecord struct {
	Epoch           int     `json:"epoch"`
	Warmup          bool    `json:"warmup,omitempty"`
	Steps           int64   `json:"steps"`
	TrainLoss       float64 `json:"train_loss"`
	TrainAccuracy   float64 `json:"train_accuracy"`
	HeldOutLoss     float64 `json:"heldout_loss"`
	HeldOutAccuracy float64 `json:"heldout_accuracy"`
	Best            bool    `json:"best,omitempty"`
	Seconds         float64 `json:"seconds"`
}

const trainRunFile = "train.json"

func (c *TrainCmd) recipe() search.TrainConfig {
	return search.TrainConfig{
		Seed: c.Seed, Epochs: c.Epochs, BatchSize: c.Batch, EvalBatchSize: c.EvalBatch, LR: c.LR, WarmupEpochs: c.WarmupEpochs,
		Momentum: c.Momentum, Nesterov: true, WeightDecay: c.WeightDecay, DecayAll: c.DecayAll, LabelSmoothing: c.LabelSmoothing,
		Pad: c.Pad, Flip: c.Flip, Erase: c.Erase, BNImages: c.BNImages, Parallelism: c.Threads, Backend: c.Backend,
	}
}

// trainData opens the training split and holds out part of it.
func (c *TrainCmd) trainData(sp *space.Space, mean, std []float32) (search.Data, error) {
	in := sp.Input
	all, err := data.Open(c.Data, "train", in.Channels, in.Height, in.Width)
	if err != nil {
		return search.Data{}, err
	}
	if c.TrainLimit > 0 && c.TrainLimit < all.Len() {
		idx := make([]int, c.TrainLimit)
		for i := range idx {
			idx[i] = i
		}
		all = all.Subset(idx)
	}
	nHeld := c.HeldOut
	if nHeld == 0 {
		nHeld = min(all.Len()/10, 5000)
	}
	train, held, err := data.HoldOut(all, nHeld, c.Seed)
	if err != nil {
		return search.Data{}, err
	}
	norm := data.Normalization{Mean: mean, Std: std}
	if len(mean) == 0 {
		norm = train.Stats()
	}
	return search.Data{Train: train, Held: held, Norm: norm}, nil
}

// Run trains.
func (c *TrainCmd) Run(g *globals) error {
	var (
		run    trainRun
		dir    string
		resume = c.Resume != ""
	)
	switch {
	case resume && c.Output != "" && c.Output != c.Resume:
		return &exitError{code: 2, err: fmt.Errorf("--resume %s and -o %s: give one run directory", c.Resume, c.Output)}
	case resume:
		dir = c.Resume
		b, err := os.ReadFile(filepath.Join(dir, trainRunFile))
		if err != nil {
			return fmt.Errorf("--resume: %w (not a training run directory?)", err)
		}
		if err := json.Unmarshal(b, &run); err != nil {
			return fmt.Errorf("%s: %v", filepath.Join(dir, trainRunFile), err)
		}
		stop, threads, backend := c.StopAfter, c.Threads, c.Backend
		*c = run.Args
		c.StopAfter, c.Threads, c.Backend = stop, threads, backend
	case c.Model == "":
		return &exitError{code: 2, err: fmt.Errorf("MODEL.json: expected the model to train (or --resume RUNDIR)")}
	case c.Output == "":
		return &exitError{code: 2, err: fmt.Errorf("-o RUNDIR: expected a run directory (or --resume RUNDIR)")}
	default:
		dir = c.Output
		if _, err := os.Stat(filepath.Join(dir, trainRunFile)); err == nil {
			return fmt.Errorf("%s already holds a training; continue it with --resume %s or choose another -o", dir, dir)
		}
	}
	if c.CheckpointEvery <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--checkpoint-every: expected a positive number of steps, got %d", c.CheckpointEvery)}
	}

	var (
		tr   *search.Trainer
		d    search.Data
		err  error
		ckpt = filepath.Join(dir, search.CheckpointFile)
	)
	if resume {
		if tr, err = search.LoadTrainer(ckpt, search.Placement{Backend: c.Backend, Parallelism: c.Threads}); err != nil {
			return err
		}
		if d, err = c.trainData(run.Space, run.Mean, run.Std); err != nil {
			tr.Close()
			return err
		}
	} else {
		m, err := ir.Load(c.Model)
		if err != nil {
			return err
		}
		var sp *space.Space
		if c.Space != "" {
			if sp, err = space.Open(c.Space); err != nil {
				return err
			}
		}
		plan, choice, err := search.ModelArch(m, sp)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Model, err)
		}
		var mean, std []float32
		if c.Init {
			mean, std = m.Input.Mean, m.Input.Std
		}
		if d, err = c.trainData(plan.Space, mean, std); err != nil {
			return err
		}
		if tr, err = search.NewTrainer(plan, choice, c.recipe()); err != nil {
			return err
		}
		if c.Init {
			if err := tr.InitFrom(m); err != nil {
				tr.Close()
				return fmt.Errorf("--init %s: %w", c.Model, err)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tr.Close()
			return err
		}
		run = trainRun{Args: *c, Space: plan.Space, Name: m.Name, Mean: d.Norm.Mean, Std: d.Norm.Std, Started: time.Now().UTC().Truncate(time.Second)}
		if m.Metadata.Search != nil {
			run.Target = m.Metadata.Search.Target
		}
		b, _ := json.MarshalIndent(run, "", "  ")
		os.Remove(filepath.Join(dir, logFile))
		if err := tr.Save(ckpt); err != nil {
			tr.Close()
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, trainRunFile), append(b, '\n')); err != nil {
			tr.Close()
			return err
		}
	}
	defer tr.Close()
	iters, err := tr.ItersPerEpoch(d)
	if err != nil {
		return err
	}
	cfg, pos := tr.Config(), tr.Position()
	total := cfg.Epochs * iters

	// keep only log lines the checkpoint has seen
	logPath := filepath.Join(dir, logFile)
	if err := search.TruncateJSONL(logPath, func(line []byte) bool {
		var r trainRecord
		return json.Unmarshal(line, &r) == nil && r.Epoch < pos.Epoch
	}); err != nil {
		return err
	}
	logW, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logW.Close()

	fmt.Fprintf(g.stdout, "train %s: %s in space %s (%s), %d training / %d held-out images of %s\n",
		dir, run.Name, run.Space.Name, archString(tr), d.Train.Len(), d.Held.Len(), c.Data)
	fmt.Fprintf(g.stdout, "recipe: %d epochs (%d warm-up) of %d steps (batch %d), lr %g cosine, momentum %g Nesterov, weight decay %g, label smoothing %g, crop pad %d, flip %v, erase %g\n",
		cfg.Epochs, cfg.WarmupEpochs, iters, cfg.BatchSize, cfg.LR, cfg.Momentum, cfg.WeightDecay, cfg.LabelSmoothing, cfg.Pad, cfg.Flip, cfg.Erase)
	if resume {
		fmt.Fprintf(g.stdout, "resuming at epoch %d, step %d of %d\n", pos.Epoch, pos.WeightSteps, total)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := progress.New("train", total)
	bar.Resume(int(pos.WeightSteps))
	defer bar.Done()
	errStopped := errors.New("stopped")
	startSteps, epochStart := pos.WeightSteps, time.Now()
	hooks := search.TrainHooks{
		Step: func(si search.TrainStepInfo) error {
			bar.Add(1)
			bar.SetStatus("loss %.3f acc %.3f lr %.4f", si.Loss, si.Accuracy, si.LR)
			if si.Position.WeightSteps%int64(c.CheckpointEvery) == 0 {
				if err := tr.Save(ckpt); err != nil {
					return err
				}
			}
			if c.StopAfter > 0 && si.Position.WeightSteps-startSteps >= int64(c.StopAfter) {
				return errStopped
			}
			return nil
		},
		Epoch: func(ei search.TrainEpochInfo) error {
			rec := trainRecord{Epoch: ei.Epoch, Warmup: ei.Warmup, Steps: ei.Position.WeightSteps, TrainLoss: ei.TrainLoss, TrainAccuracy: ei.TrainAccuracy,
				HeldOutLoss: ei.Held.Loss, HeldOutAccuracy: ei.Held.Accuracy, Best: ei.Best, Seconds: time.Since(epochStart).Seconds()}
			epochStart = time.Now()
			b, _ := json.Marshal(rec)
			if _, err := logW.Write(append(b, '\n')); err != nil {
				return err
			}
			if err := logW.Sync(); err != nil {
				return err
			}
			if err := tr.Save(ckpt); err != nil {
				return err
			}
			bar.SetStatus("epoch %d: held-out acc %.4f loss %.3f", ei.Epoch, ei.Held.Accuracy, ei.Held.Loss)
			return nil
		},
	}
	err = tr.Run(ctx, d, hooks)
	bar.Done()
	if err != nil {
		if errors.Is(err, errStopped) || errors.Is(err, context.Canceled) {
			if serr := tr.Save(ckpt); serr != nil {
				return serr
			}
			fmt.Fprintf(g.stdout, "stopped at step %d of %d; checkpoint saved; continue with: pnas train --resume %s\n", tr.Position().WeightSteps, total, dir)
			if errors.Is(err, context.Canceled) {
				return &exitError{code: 130, err: fmt.Errorf("interrupted")}
			}
			return nil
		}
		return err
	}

	m, final, err := tr.Finish(d, search.DeriveOptions{Name: run.Name, Mean: d.Norm.Mean, Std: d.Norm.Std, Labels: d.Train.Classes, Target: run.Target})
	if err != nil {
		return err
	}
	m.Metadata.Accuracy = append(m.Metadata.Accuracy, ir.Accuracy{Data: c.Data, Split: "heldout", N: final.N, Top1: final.Accuracy})
	modelPath := filepath.Join(dir, "model.json")
	if err := ir.Save(m, modelPath); err != nil {
		return err
	}
	best, _ := tr.Best()
	if err := writeTrainPlot(dir, run.Name, best); err != nil {
		fmt.Fprintf(g.stderr, "warning: plot: %v\n", err)
	}
	fmt.Fprintf(g.stdout, "held-out accuracy %.4f (%d images, epoch %d's weights, BN statistics re-estimated)\n", final.Accuracy, final.N, best)
	fmt.Fprintf(g.stdout, "wrote %s, %s\n", modelPath, filepath.Join(dir, "training.png"))
	fmt.Fprintln(g.stdout, modelPath)
	return nil
}

func archString(tr *search.Trainer) string {
	return search.ChoiceString(tr.Plan(), tr.Choice())
}

// writeTrainPlot renders RUNDIR/training.png from log.jsonl.
func writeTrainPlot(dir, name string, best int) error {
	b, err := os.ReadFile(filepath.Join(dir, logFile))
	if err != nil {
		return err
	}
	var eps []plots.TrainEpoch
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var r trainRecord
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("%s: %v", filepath.Join(dir, logFile), err)
		}
		eps = append(eps, plots.TrainEpoch{Epoch: r.Epoch, Warmup: r.Warmup, TrainLoss: r.TrainLoss, TrainAccuracy: r.TrainAccuracy,
			HeldLoss: r.HeldOutLoss, HeldAccuracy: r.HeldOutAccuracy})
	}
	return writePNG(filepath.Join(dir, "training.png"), func() ([]byte, error) { return plots.Training(name, eps, best) })
}

// writePNG renders a plot and writes it all-or-nothing.
func writePNG(path string, render func() ([]byte, error)) error {
	b, err := render()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}
