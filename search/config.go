package search

import (
	"fmt"
	"math"
)

// Gate modes: how the architecture step estimates the gradient of alpha.
const (
	// GateFullV2 runs the sampled path and recomputes every other
	// candidate's output without a graph to get dL/dg_j = <o_j, dL/dy>.
	GateFullV2 = "full_v2"
	// GateTwo samples two candidates without replacement and updates only
	// their alphas, rescaled so the other candidates' probabilities stay.
	GateTwo = "two"
	// GateAll runs every candidate weighted by softmax(alpha) (DARTS-style),
	// in the weight step too; it is the memory baseline.
	GateAll = "all"
)

// Derivation rules: how the searched network is read off alpha.
const (
	// DeriveArgmax keeps the most probable candidate of every layer (the
	// reference).
	DeriveArgmax = "argmax"
	// DeriveBudget keeps the most probable architecture (largest sum of
	// log softmax(alpha) over the layers) whose predicted latency lies
	// within DeriveBand below the target latency: the budget the user gave
	// is spent where alpha ranks the candidates highest. Without one in the
	// band, the most probable one under the target; without that, argmax.
	DeriveBudget = "budget"
	// DeriveBand is the relative width of DeriveBudget's band: [T(1-band), T].
	DeriveBand = 0.1

	// ShareNone gives every candidate of a searchable layer its own
	// convolution weights (the reference; "" too).
	ShareNone = "none"
	// ShareNested makes the candidates of a searchable layer slices of one
	// set of convolution weights: the expansion's first round(cin*e) output
	// channels, the centre k x k of the largest depthwise kernel, and the
	// projection's matching input channels. Each candidate keeps its own
	// BN. The candidates' features then agree from the start, which the
	// layers that start a stage (no residual, so no identity to fall back
	// on) need for the supernet to learn at the pace of a single network.
	ShareNested = "nested"
)

// Latency loss forms.
const (
	// LossMulLog is a * CE * (ln E / ln T)^beta.
	LossMulLog = "mul#log"
	// LossAddLinear is CE + lambda * (E - T) / T.
	LossAddLinear = "add#linear"
	// LossAddHinge is CE + lambda * max(0, (E - T) / T): no latency
	// pressure below the target, so that the search spends the budget it is
	// given instead of shrinking the network toward the fastest one (a
	// pnas addition to the reference's two forms).
	LossAddHinge = "add#hinge"
	// LossNone is plain CE: no latency term.
	LossNone = "none"
)

// Config holds every hyper-parameter of a search. DefaultConfig gives the
// ProxylessNAS reference values.
type Config struct {
	Seed int64 // seeds weights, alpha, path sampling, data order and augmentation

	BatchSize     int // images per weight step
	ArchBatchSize int // held-out images per architecture step

	WarmupEpochs int     // weight-only epochs on uniformly sampled paths
	WarmupLR     float64 // initial learning rate of the warm-up cosine schedule
	SearchEpochs int     // epochs with architecture steps
	TrainEpochs  int     // epochs after the search training the argmax network alone (no architecture steps)
	TrainLR      float64 // initial learning rate of the train cosine schedule

	LR             float64 // initial weight learning rate of the search cosine schedule (to 0, per iteration)
	Momentum       float64 // SGD momentum
	Nesterov       bool    // Nesterov momentum
	WeightDecay    float64 // L2 on every weight, BN included
	LabelSmoothing float64 // label smoothing of the weight-step cross entropy

	ArchLR          float64 // Adam learning rate on alpha
	ArchBeta1       float64 // Adam beta1 (0: steps only where the gradient is non-zero)
	ArchBeta2       float64 // Adam beta2
	ArchEps         float64 // Adam epsilon
	ArchWeightDecay float64 // L2 on alpha
	ArchEvery       int     // weight steps per architecture step
	ArchSkipEpoch0  bool    // no architecture steps in the first search epoch
	AlphaInitStd    float64 // alpha ~ N(0, std^2)
	GateMode        string  // GateFullV2, GateTwo, GateAll or GateReinforce
	Derive          string  // DeriveArgmax ("" too) or DeriveBudget: how the searched network is read off alpha
	Sharing         string  // ShareNone ("" too) or ShareNested: weights shared between a layer's candidates

	RLSamples       int     // reinforce: paths sampled per architecture step (M)
	RLLatencyWeight float64 // reinforce: w of the reward ACC * (LAT/T)^w (0: accuracy alone)
	RLBaselineDecay float64 // reinforce: b += decay * (mean R - b)

	LatencyLoss   string  // the loss form: LossMulLog, LossAddLinear, LossAddHinge or LossNone (see LossFunc)
	TargetLatency float64 // T, in the latency table's unit (microseconds)
	LatencyA      float64 // a of mul#log
	LatencyBeta   float64 // beta of mul#log
	LatencyLambda float64 // lambda of add#linear

	BNMomentum float64 // running statistics: r = (1-m) r + m * batch (PyTorch convention)
	BNEps      float64 // variance epsilon

	// Parallelism: on the default backend, the goroutines each op uses (0:
	// GOMAXPROCS). On simplego ("go"), 0 runs a graph's independent ops
	// concurrently on all cores and N > 0 runs ops one at a time with N
	// workers each.
	Parallelism int

	// Backend is a GoMLX backend spec, "name[:config]" as
	// backends.NewWithConfig takes it ("pnas:parallelism=2", "go",
	// "go:ops_sequential", "xla:cpu", "xla:cuda"); "" is pnas's own CPU
	// backend (DefaultBackend) with Parallelism workers per op. Only
	// backends compiled into the program are available (Backends);
	// GoMLX's default bundle is never imported.
	Backend string

	// MemoryHeadroom applies on simplego when the program has opted in
	// with Searcher.ManageProcessMemory: the soft memory limit under which
	// each graph runs is the live heap at the start of the step plus MemoryHeadroom
	// times the graph's planned working set plus 64 MiB (0:
	// DefaultMemoryHeadroom; negative: no limit, the process's GOGC and
	// GOMEMLIMIT alone). It trades memory for collections; it does not
	// change results.
	MemoryHeadroom float64
}

// DefaultConfig returns the ProxylessNAS defaults (see docs/search.md).
func DefaultConfig() Config {
	return Config{
		Seed:            0,
		BatchSize:       64,
		ArchBatchSize:   64,
		WarmupEpochs:    40,
		WarmupLR:        0.05,
		SearchEpochs:    120,
		TrainEpochs:     0,
		TrainLR:         0.025,
		LR:              0.025,
		Momentum:        0.9,
		Nesterov:        true,
		WeightDecay:     4e-5,
		LabelSmoothing:  0.1,
		ArchLR:          1e-3,
		ArchBeta1:       0,
		ArchBeta2:       0.999,
		ArchEps:         1e-8,
		ArchWeightDecay: 0,
		ArchEvery:       5,
		ArchSkipEpoch0:  true,
		AlphaInitStd:    1e-3,
		GateMode:        GateFullV2,
		RLSamples:       10,
		RLLatencyWeight: -0.1,
		RLBaselineDecay: 0.99,
		LatencyLoss:     LossMulLog,
		TargetLatency:   0,
		LatencyA:        0.2,
		LatencyBeta:     0.3,
		LatencyLambda:   0.1,
		BNMomentum:      0.1,
		BNEps:           1e-3,
		Parallelism:     0,
		MemoryHeadroom:  0,
	}
}

// Validate checks every field, naming the field, what was expected and
// what was found.
func (c *Config) Validate() error {
	pos := func(name string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("search config: %s: expected a finite value > 0, got %v", name, v)
		}
		return nil
	}
	nonneg := func(name string, v float64) error {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("search config: %s: expected a finite value >= 0, got %v", name, v)
		}
		return nil
	}
	finite := func(name string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("search config: %s: expected a finite value, got %v", name, v)
		}
		return nil
	}
	unit := func(name string, v float64) error {
		if !(v >= 0 && v < 1) {
			return fmt.Errorf("search config: %s: expected a value in [0, 1), got %v", name, v)
		}
		return nil
	}
	ints := []struct {
		name   string
		v, min int
	}{
		{"BatchSize", c.BatchSize, 2},
		{"ArchBatchSize", c.ArchBatchSize, 2},
		{"WarmupEpochs", c.WarmupEpochs, 0},
		{"SearchEpochs", c.SearchEpochs, 0},
		{"TrainEpochs", c.TrainEpochs, 0},
		{"ArchEvery", c.ArchEvery, 1},
		{"Parallelism", c.Parallelism, 0},
	}
	for _, i := range ints {
		if i.v < i.min {
			return fmt.Errorf("search config: %s: expected >= %d, got %d", i.name, i.min, i.v)
		}
	}
	for _, e := range []error{
		nonneg("WarmupLR", c.WarmupLR), nonneg("LR", c.LR), nonneg("TrainLR", c.TrainLR), unit("Momentum", c.Momentum),
		nonneg("WeightDecay", c.WeightDecay), unit("LabelSmoothing", c.LabelSmoothing),
		nonneg("ArchLR", c.ArchLR), unit("ArchBeta1", c.ArchBeta1), unit("ArchBeta2", c.ArchBeta2),
		pos("ArchEps", c.ArchEps), nonneg("ArchWeightDecay", c.ArchWeightDecay), nonneg("AlphaInitStd", c.AlphaInitStd),
		unit("BNMomentum", c.BNMomentum), pos("BNEps", c.BNEps),
		finite("MemoryHeadroom", c.MemoryHeadroom),
	} {
		if e != nil {
			return e
		}
	}
	switch c.GateMode {
	case GateFullV2, GateTwo, GateAll:
	case GateReinforce:
		if err := c.validateReinforce(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("search config: GateMode: expected %q, %q, %q or %q, got %q", GateFullV2, GateTwo, GateAll, GateReinforce, c.GateMode)
	}
	switch c.Sharing {
	case "", ShareNone, ShareNested:
	default:
		return fmt.Errorf("search config: Sharing: expected %q or %q, got %q", ShareNone, ShareNested, c.Sharing)
	}
	switch c.Derive {
	case "", DeriveArgmax:
	case DeriveBudget:
		if !(c.TargetLatency > 0) || math.IsInf(c.TargetLatency, 0) {
			return fmt.Errorf("search config: TargetLatency: expected a finite value > 0 for derivation %q, got %v", DeriveBudget, c.TargetLatency)
		}
	default:
		return fmt.Errorf("search config: Derive: expected %q or %q, got %q", DeriveArgmax, DeriveBudget, c.Derive)
	}
	switch c.LatencyLoss {
	case LossNone:
	case LossMulLog:
		if err := pos("TargetLatency", c.TargetLatency); err != nil {
			return err
		}
		if c.TargetLatency == 1 {
			return fmt.Errorf("search config: TargetLatency: expected a value other than 1 for %s (ln T is the divisor), got 1", LossMulLog)
		}
		if err := pos("LatencyA", c.LatencyA); err != nil {
			return err
		}
		if err := nonneg("LatencyBeta", c.LatencyBeta); err != nil {
			return err
		}
	case LossAddLinear, LossAddHinge:
		if err := pos("TargetLatency", c.TargetLatency); err != nil {
			return err
		}
		if err := nonneg("LatencyLambda", c.LatencyLambda); err != nil {
			return err
		}
	default:
		return fmt.Errorf("search config: LatencyLoss: expected %q, %q, %q or %q, got %q", LossMulLog, LossAddLinear, LossAddHinge, LossNone, c.LatencyLoss)
	}
	return nil
}
