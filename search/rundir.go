package search

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pnasml/pnas/internal/atomicfile"
	"github.com/pnasml/pnas/search/space"
)

// The files of a run directory. RunFile, CheckpointFile and SumsFile are
// replaced atomically; LogFile and AlphaFile are appended to and cut back
// to the last checkpoint on resume, so that a resumed run writes the same
// lines as an uninterrupted one.
const (
	RunFile        = "search.json"    // RunSettings
	CheckpointFile = "checkpoint.bin" // Searcher.Save
	SumsFile       = "sums.json"      // running epoch sums at the last two checkpoints
	LogFile        = "log.jsonl"      // one EpochRecord per epoch
	AlphaFile      = "alpha.jsonl"    // one AlphaRecord per architecture step
)

// RunSettings is what a run directory's search.json holds: every setting of
// the run, so that a resumed search continues with exactly the same ones.
type RunSettings struct {
	// Args is the caller's own record of how the run was asked for (the
	// command line's flags); the run directory stores it unread.
	Args      json.RawMessage `json:"args,omitempty"`
	Space     *space.Space    `json:"space"`
	Config    Config          `json:"config"`
	Table     string          `json:"latency_table"`                // the table's ID ("" without one)
	TableFile string          `json:"latency_table_file,omitempty"` // the table's file, if it came from one
	Started   time.Time       `json:"started"`
}

// EpochRecord is one line of log.jsonl.
type EpochRecord struct {
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

// AlphaRecord is one line of alpha.jsonl: softmax(alpha) after an
// architecture step.
type AlphaRecord struct {
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

// RunDir is a search's run directory: its settings, checkpoints, logs and
// the running sums that make a resumed search log exactly what an
// uninterrupted one logs.
type RunDir struct {
	Path     string
	Settings RunSettings
}

// ErrStopped is what RunDir.Run returns when RunOptions.StopAfter steps
// are done (after a checkpoint).
var ErrStopped = errors.New("search: stopped after the requested number of steps")

// HasRun reports whether dir already holds a search.
func HasRun(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, RunFile))
	return err == nil
}

// CreateRun starts a run directory for the new searcher s: it creates dir
// (it must not hold a search already), writes search.json with set (Space
// and Config are taken from s; Table from s's table), removes logs of an
// earlier run and saves the initial checkpoint.
func CreateRun(dir string, set RunSettings, s *Searcher) (*RunDir, error) {
	if HasRun(dir) {
		return nil, fmt.Errorf("%s already holds a search; continue it with --resume %s or choose another run directory", dir, dir)
	}
	set.Space, set.Config = s.plan.Space, s.cfg
	set.Table = ""
	if s.lat != nil {
		set.Table = s.lat.TableID
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &RunDir{Path: dir, Settings: set}
	for _, f := range []string{LogFile, AlphaFile, SumsFile} {
		if err := os.Remove(r.file(f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := s.Save(r.file(CheckpointFile)); err != nil {
		return nil, err
	}
	// search.json last: a directory without it is not a run and may be
	// used again
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(r.file(RunFile), append(b, '\n')); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenRun reads the settings of the run in dir.
func OpenRun(dir string) (*RunDir, error) {
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		return nil, fmt.Errorf("%s: not a run directory (%v)", dir, err)
	}
	r := &RunDir{Path: dir}
	if err := json.Unmarshal(b, &r.Settings); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, RunFile), err)
	}
	return r, nil
}

func (r *RunDir) file(name string) string { return filepath.Join(r.Path, name) }

// Resume loads the run's last checkpoint with table (the one the search
// used; nil only if it ran without one) and the runtime settings rt.
// Nothing in the directory changes.
func (r *RunDir) Resume(table LatencyTable, rt Placement) (*Searcher, error) {
	return LoadOn(r.file(CheckpointFile), table, rt)
}

// RunOptions are the per-invocation settings of RunDir.Run.
type RunOptions struct {
	CheckpointEvery int // weight steps between checkpoints (> 0)
	StopAfter       int // stop (with a checkpoint) after this many weight steps of this invocation; 0: run to the end
	// Step and Epoch, if set, are told of progress after the run directory
	// has recorded it.
	Step  func(StepInfo)
	Epoch func(EpochRecord)
}

// Run continues s, which CreateRun or Resume returned for this directory,
// to the end of its schedule: it cuts the logs back to the checkpoint's
// position, appends a line to log.jsonl per epoch and to alpha.jsonl per
// architecture step, and checkpoints every opt.CheckpointEvery weight
// steps and after every epoch. When ctx is cancelled or opt.StopAfter steps
// are done it checkpoints and returns ctx's error or ErrStopped.
func (r *RunDir) Run(ctx context.Context, s *Searcher, d Data, opt RunOptions) error {
	if opt.CheckpointEvery <= 0 {
		return fmt.Errorf("search: run directory: checkpoint interval: expected > 0 steps, got %d", opt.CheckpointEvery)
	}
	pos := s.Position()
	// keep only log lines the checkpoint has seen
	if err := TruncateJSONL(r.file(LogFile), func(line []byte) bool {
		var e EpochRecord
		return json.Unmarshal(line, &e) == nil && e.Epoch < pos.Epoch
	}); err != nil {
		return err
	}
	if err := TruncateJSONL(r.file(AlphaFile), func(line []byte) bool {
		var a AlphaRecord
		return json.Unmarshal(line, &a) == nil && a.Step <= pos.WeightSteps
	}); err != nil {
		return err
	}
	logW, err := os.OpenFile(r.file(LogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logW.Close()
	alphaW, err := os.OpenFile(r.file(AlphaFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer alphaW.Close()

	var (
		sums       epochSums
		saved      []epochSums // the sums at the last two checkpoints
		epochStart = time.Now()
		startSteps = pos.WeightSteps
	)
	if b, err := os.ReadFile(r.file(SumsFile)); err == nil {
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
		if err := atomicfile.Write(r.file(SumsFile), b); err != nil {
			return err
		}
		return s.Save(r.file(CheckpointFile))
	}
	hooks := Hooks{
		Step: func(si StepInfo) error {
			sums.LossSum += si.Weight.Loss
			sums.AccSum += si.Weight.Accuracy
			sums.Steps++
			if si.Arch != nil {
				sums.ArchLossSum += si.Arch.Loss
				sums.ArchSteps++
				b, _ := json.Marshal(AlphaRecord{Step: si.Position.WeightSteps, Probs: s.Probs()})
				if _, err := alphaW.Write(append(b, '\n')); err != nil {
					return err
				}
			}
			if opt.Step != nil {
				opt.Step(si)
			}
			if si.Position.WeightSteps%int64(opt.CheckpointEvery) == 0 {
				if err := checkpoint(si.Position.WeightSteps); err != nil {
					return err
				}
			}
			if opt.StopAfter > 0 && si.Position.WeightSteps-startSteps >= int64(opt.StopAfter) {
				return ErrStopped
			}
			return nil
		},
		Epoch: func(ei EpochInfo) error {
			rec := EpochRecord{
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
			if opt.Epoch != nil {
				opt.Epoch(rec)
			}
			return nil
		},
	}
	err = s.Run(ctx, d, hooks)
	if errors.Is(err, ErrStopped) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if serr := checkpoint(s.Position().WeightSteps); serr != nil {
			return serr
		}
	}
	return err
}

// Epochs reads log.jsonl.
func (r *RunDir) Epochs() ([]EpochRecord, error) { return ReadEpochs(r.file(LogFile)) }

// Alphas reads alpha.jsonl.
func (r *RunDir) Alphas() ([]AlphaRecord, error) { return readJSONL[AlphaRecord](r.file(AlphaFile)) }

// ReadEpochs reads a log.jsonl file.
func ReadEpochs(path string) ([]EpochRecord, error) { return readJSONL[EpochRecord](path) }

func readJSONL[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r T
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return recs, fmt.Errorf("%s: line %d: %w", path, len(recs)+1, err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// TruncateJSONL rewrites path keeping the lines keep accepts (atomically);
// a missing file is fine.
func TruncateJSONL(path string, keep func([]byte) bool) error {
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
	return atomicfile.Write(path, out)
}
