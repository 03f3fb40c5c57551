package search

import (
	"fmt"

	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/ir"
)

// DeriveOptions describe the model Derive writes.
type DeriveOptions struct {
	Name   string    // model name; default "<space>-searched"
	Mean   []float32 // input normalization recorded in the model
	Std    []float32
	Labels []string // class names
	Target string   // target tag the latency table was measured on
}

// Derive keeps the candidates Chosen picks (by default the most probable
// candidate of every searchable layer, the argmax of alpha), drops the
// layers where Zero is chosen (their identity residual remains) and returns the network as an *ir.Model carrying the
// trained supernet weights of the kept candidates, BN running statistics
// included. Op names follow the supernet's weight names without the
// candidate: "stem.conv", "first.dw.bn", "s2.l0.expand.conv", "head.act",
// "classifier"; every op carries its block annotation.
func (s *Searcher) Derive(opt DeriveOptions) (*ir.Model, error) {
	return s.DeriveChoice(s.Chosen(), opt)
}

// DeriveChoice is Derive for an explicit choice of candidate per layer.
func (s *Searcher) DeriveChoice(choice []int, opt DeriveOptions) (*ir.Model, error) {
	p := s.plan
	if err := checkChoice(p, "derive", choice); err != nil {
		return nil, err
	}
	name := opt.Name
	if name == "" {
		name = p.Space.Name + "-searched"
	}
	m, err := archnet.Build(p, choice, name, s.params.data, nil)
	if err != nil {
		return nil, fmt.Errorf("search: derive: %w", err)
	}
	m.Producer = "pnas search"
	m.Input.Mean = append([]float32(nil), opt.Mean...)
	m.Input.Std = append([]float32(nil), opt.Std...)
	m.Input.Labels = append([]string(nil), opt.Labels...)
	if err := m.Verify(); err != nil {
		return nil, fmt.Errorf("search: derive: %w", err)
	}
	info := &ir.SearchInfo{
		Space:    p.Space.Name,
		Target:   opt.Target,
		Seed:     s.cfg.Seed,
		GateMode: s.cfg.GateMode,
		Alpha:    s.Alpha(),
		Steps:    int(s.pos.WeightSteps),
	}
	for _, c := range p.Candidates {
		info.Candidates = append(info.Candidates, archnet.Annotation(c))
	}
	for l, j := range choice {
		info.Choices = append(info.Choices, archnet.Annotation(p.Layers[l].Candidates[j]))
	}
	if s.lat != nil {
		info.LatencyTable = s.lat.TableID
		info.ExpectedLatencyUS = s.lat.Of(choice)
		m.Metadata.LatencyTable = s.lat.TableID
	}
	m.Metadata.Search = info
	return m, nil
}
