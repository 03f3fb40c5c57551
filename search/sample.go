package search

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search/space"
)

// streamArch is the RNG stream of Sample ("arch").
const streamArch = 0x61726368

// Sample draws n architectures of the plan, each layer's candidate
// uniformly and independently, from a PCG seeded with seed: the same
// plan, n and seed give the same architectures.
func Sample(p *space.Plan, n int, seed int64) [][]int {
	rng := rand.New(rand.NewPCG(uint64(seed), streamArch))
	out := make([][]int, n)
	for i := range out {
		out[i] = archnet.Random(p, rng)
	}
	return out
}

// UniformChoice returns the choice that takes candidate name (such as
// "k3e6") at every searchable layer, or an error naming the first layer
// that does not offer it.
func UniformChoice(p *space.Plan, name string) ([]int, error) {
	choice, all := archnet.Uniform(p, name)
	if !all {
		for l, j := range choice {
			if j < 0 {
				return nil, fmt.Errorf("search: uniform %s: layer %s does not offer candidate %q", name, archnet.LayerPrefix(p.Layers[l]), name)
			}
		}
	}
	return choice, nil
}

// ArchModel returns the network of p that takes candidate choice[l] at
// every layer as a model with freshly initialized weights (seeded) and
// search metadata naming its space, candidates and choices, so that
// Trainer (pnas train) can train it.
func ArchModel(p *space.Plan, choice []int, name string, seed int64) (*ir.Model, error) {
	if err := checkChoice(p, "arch model", choice); err != nil {
		return nil, err
	}
	ps := newSupernetParams(p, rand.New(rand.NewPCG(uint64(seed), streamInit)), false)
	m, err := archnet.Build(p, choice, name, func(n string) []float32 { return append([]float32(nil), ps.get(n).w...) }, nil)
	if err != nil {
		return nil, fmt.Errorf("search: arch model: %w", err)
	}
	m.Producer = "pnas sample"
	info := &ir.SearchInfo{Space: p.Space.Name, Seed: seed}
	for _, c := range p.Candidates {
		info.Candidates = append(info.Candidates, archnet.Annotation(c))
	}
	for l, j := range choice {
		info.Choices = append(info.Choices, archnet.Annotation(p.Layers[l].Candidates[j]))
	}
	m.Metadata.Search = info
	return m, nil
}

// ChoiceString names a choice compactly: the candidate of every layer
// joined by "-", e.g. "k3e3-k5e6-zero".
func ChoiceString(p *space.Plan, choice []int) string {
	names := make([]string, len(choice))
	for l, j := range choice {
		names[l] = p.Layers[l].Candidates[j].Name()
	}
	return strings.Join(names, "-")
}

// MaxSampleDraws bounds the draws of SampleWithin.
const MaxSampleDraws = 20_000_000

// SampleWithin draws n architectures of the plan, each layer's candidate
// uniformly, keeping only those whose latency under lm lies in [lo, hi]
// (rejection sampling: the kept ones are uniform over the architectures of
// that latency band, the random-search baseline at equal latency). The
// same plan, table, band, n and seed give the same architectures. It
// fails, naming the band and the draws made, when fewer than n land in the
// band within MaxSampleDraws draws.
func SampleWithin(p *space.Plan, lm *LatencyModel, lo, hi float64, n int, seed int64) ([][]int, error) {
	if !(lo <= hi) {
		return nil, fmt.Errorf("search: sample: latency band [%g, %g] µs is empty", lo, hi)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), streamArch))
	var out [][]int
	c := make([]int, len(p.Layers))
	for draws := 0; len(out) < n; draws++ {
		if draws == MaxSampleDraws {
			return nil, fmt.Errorf("search: sample: %d of %d architectures within [%.1f, %.1f] µs (table %s) after %d draws; widen the band or move the target toward the space's typical latency",
				len(out), n, lo, hi, lm.TableID, draws)
		}
		archnet.RandomInto(c, p, rng)
		if l := lm.Of(c); l >= lo && l <= hi {
			out = append(out, append([]int(nil), c...))
		}
	}
	return out, nil
}
