package search

import (
	"fmt"
	"math"

	"github.com/pnasml/pnas/search/space"
)

// LatencyTable maps latency-table keys (see space.MBConvKey and the key
// methods of space.Plan) to measured latencies in microseconds.
type LatencyTable interface {
	// ID identifies the table (path and hash, or a name) for provenance.
	ID() string
	// Lookup returns the latency of key in microseconds.
	Lookup(key string) (microseconds float64, ok bool)
}

// MapTable is a LatencyTable held in a map.
type MapTable struct {
	Name    string
	Entries map[string]float64
}

// ID returns the table's name.
func (t *MapTable) ID() string { return t.Name }

// Lookup returns the entry for key.
func (t *MapTable) Lookup(key string) (float64, bool) {
	v, ok := t.Entries[key]
	return v, ok
}

// LatencyModel is a latency table resolved for one plan.
type LatencyModel struct {
	TableID   string
	Fixed     float64     // stem + first block + head + logits, microseconds
	FixedKeys []string    // their keys
	Layer     [][]float64 // [layer][candidate] latency, 0 for Zero
	Keys      [][]string  // [layer][candidate] key, "" for Zero
}

// NewLatencyModel looks up every key the plan needs. A missing key is an
// error that names it.
func NewLatencyModel(p *space.Plan, t LatencyTable) (*LatencyModel, error) {
	if t == nil {
		return nil, fmt.Errorf("latency: no latency table")
	}
	m := &LatencyModel{TableID: t.ID()}
	look := func(key string) (float64, error) {
		v, ok := t.Lookup(key)
		if !ok {
			return 0, fmt.Errorf("latency table %s: missing key %q", t.ID(), key)
		}
		if !(v >= 0) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("latency table %s: key %q: expected a finite latency >= 0, got %v", t.ID(), key, v)
		}
		return v, nil
	}
	m.FixedKeys = p.FixedKeys()
	for _, k := range m.FixedKeys {
		v, err := look(k)
		if err != nil {
			return nil, err
		}
		m.Fixed += v
	}
	for _, l := range p.Layers {
		lat := make([]float64, len(l.Candidates))
		keys := make([]string, len(l.Candidates))
		for j, c := range l.Candidates {
			keys[j] = l.Key(c)
			if keys[j] == "" {
				continue
			}
			v, err := look(keys[j])
			if err != nil {
				return nil, err
			}
			lat[j] = v
		}
		m.Layer = append(m.Layer, lat)
		m.Keys = append(m.Keys, keys)
	}
	return m, nil
}

// Expected returns E[LAT] = Fixed + sum_l sum_j p[l][j] * F(l, j).
func (m *LatencyModel) Expected(probs [][]float64) float64 {
	e := m.Fixed
	for l, p := range probs {
		for j, pj := range p {
			e += pj * m.Layer[l][j]
		}
	}
	return e
}

// Of returns the latency of the architecture choosing candidate choice[l]
// at every layer.
func (m *LatencyModel) Of(choice []int) float64 {
	e := m.Fixed
	for l, j := range choice {
		e += m.Layer[l][j]
	}
	return e
}

// LossFunc is the loss of an architecture step: cross entropy combined
// with the expected latency in the form Config.LatencyLoss names.
type LossFunc struct {
	Form   string  // LossMulLog, LossAddLinear, LossAddHinge or LossNone
	Target float64 // T
	A      float64 // mul#log factor
	Beta   float64 // mul#log exponent
	Lambda float64 // add#linear and add#hinge weight
}

// LossFunc returns the loss function configured by c.
func (c *Config) LossFunc() LossFunc {
	return LossFunc{Form: c.LatencyLoss, Target: c.TargetLatency, A: c.LatencyA, Beta: c.LatencyBeta, Lambda: c.LatencyLambda}
}

// Eval returns the loss L(CE, E) and its partial derivatives dL/dCE and
// dL/dE.
func (l LossFunc) Eval(ce, e float64) (loss, dCE, dE float64, err error) {
	switch l.Form {
	case LossNone, "":
		return ce, 1, 0, nil
	case LossAddLinear:
		return ce + l.Lambda*(e-l.Target)/l.Target, 1, l.Lambda / l.Target, nil
	case LossAddHinge:
		if e <= l.Target {
			return ce, 1, 0, nil
		}
		return ce + l.Lambda*(e-l.Target)/l.Target, 1, l.Lambda / l.Target, nil
	case LossMulLog:
		lt := math.Log(l.Target)
		r := math.Log(e) / lt
		if !(e > 0) || !(r > 0) {
			return 0, 0, 0, fmt.Errorf("latency loss %s: expected latency %g and target %g must lie on the same side of 1", LossMulLog, e, l.Target)
		}
		f := math.Pow(r, l.Beta)
		loss = l.A * ce * f
		dCE = l.A * f
		dE = l.A * ce * l.Beta * math.Pow(r, l.Beta-1) / (e * lt)
		return loss, dCE, dE, nil
	}
	return 0, 0, 0, fmt.Errorf("latency loss: unknown form %q", l.Form)
}
