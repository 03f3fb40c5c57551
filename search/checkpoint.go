package search

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/pnasml/pnas/internal/atomicfile"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search/space"
)

// Checkpoint file format: a safetensors file whose tensors are the supernet
// tensors (by name) and the SGD momentum buffers ("momentum:" + name), and
// whose metadata entry checkpointKey holds the JSON ckptState.
const (
	checkpointFormat  = "pnas-search-checkpoint"
	checkpointVersion = 1
	checkpointKey     = "pnas.search"
	momentumPrefix    = "momentum:"
)

type ckptState struct {
	Format   string       `json:"format"`
	Version  int          `json:"version"`
	Space    *space.Space `json:"space"`
	Config   Config       `json:"config"`
	TableID  string       `json:"table_id,omitempty"`
	Alpha    [][]float64  `json:"alpha"`
	AdamM    [][]float64  `json:"adam_m"`
	AdamV    [][]float64  `json:"adam_v"`
	AdamT    []int64      `json:"adam_t"`
	Sample   []byte       `json:"sample_rng"`
	Aug      []byte       `json:"aug_rng"`
	Position Position     `json:"position"`
	Baseline *float64     `json:"rl_baseline,omitempty"` // REINFORCE baseline, once set
}

// Save writes the whole search state to path atomically (a temporary file
// renamed over path): weights, BN statistics, momentum buffers, alpha and
// its Adam state, RNG states and the schedule position. Load resumes from it
// bit-identically.
func (s *Searcher) Save(path string) error {
	b, err := s.encodeCheckpoint()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

func (s *Searcher) encodeCheckpoint() ([]byte, error) {
	st := ckptState{
		Format: checkpointFormat, Version: checkpointVersion,
		Space: s.plan.Space, Config: s.cfg,
		Alpha: s.alpha, AdamM: s.adamM, AdamV: s.adamV, AdamT: s.adamT,
		Position: s.pos,
	}
	if s.rl.set {
		st.Baseline = &s.rl.baseline
	}
	if s.lat != nil {
		st.TableID = s.lat.TableID
	}
	var err error
	if st.Sample, err = s.sampleSrc.MarshalBinary(); err != nil {
		return nil, err
	}
	if st.Aug, err = s.augSrc.MarshalBinary(); err != nil {
		return nil, err
	}
	meta, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("search: checkpoint: %w", err)
	}
	tensors := map[string]*ir.Tensor{}
	for _, p := range s.params.list {
		tensors[p.name] = &ir.Tensor{Shape: p.shape, Data: p.w}
		if p.buf != nil {
			tensors[momentumPrefix+p.name] = &ir.Tensor{Shape: p.shape, Data: p.buf}
		}
	}
	var buf bytes.Buffer
	if err := ir.EncodeSafetensors(&buf, tensors, map[string]string{checkpointKey: string(meta)}); err != nil {
		return nil, fmt.Errorf("search: checkpoint: %w", err)
	}
	return buf.Bytes(), nil
}

// Load restores a searcher saved by Save. table must be the latency table
// the search used (its ID is checked); it may be nil only if the search ran
// without one.
func Load(path string, table LatencyTable) (*Searcher, error) {
	return load(path, table, nil)
}

// Placement holds the settings that say where a search runs rather than
// what it computes; a resumed search may change them. With the same
// backend the results do not depend on Parallelism; another backend rounds
// differently, so a search resumed on it is no longer bit for bit the
// uninterrupted one.
type Placement struct {
	Backend     string // Config.Backend
	Parallelism int    // Config.Parallelism
}

// LoadOn is Load with the checkpoint's placement replaced by rt.
func LoadOn(path string, table LatencyTable, rt Placement) (*Searcher, error) {
	return load(path, table, &rt)
}

func load(path string, table LatencyTable, rt *Placement) (*Searcher, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := decodeCheckpoint(b, table, rt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func decodeCheckpoint(b []byte, table LatencyTable, rt *Placement) (*Searcher, error) {
	tensors, meta, err := ir.DecodeSafetensors(b)
	if err != nil {
		return nil, fmt.Errorf("search checkpoint: %w", err)
	}
	raw, ok := meta[checkpointKey]
	if !ok {
		return nil, fmt.Errorf("search checkpoint: metadata %q: missing (not a pnas search checkpoint)", checkpointKey)
	}
	var st ckptState
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("search checkpoint: state: %w", err)
	}
	if st.Format != checkpointFormat || st.Version != checkpointVersion {
		return nil, fmt.Errorf("search checkpoint: format: expected %s version %d, got %q version %d", checkpointFormat, checkpointVersion, st.Format, st.Version)
	}
	if st.Space == nil {
		return nil, fmt.Errorf("search checkpoint: space: missing")
	}
	plan, err := st.Space.Plan()
	if err != nil {
		return nil, fmt.Errorf("search checkpoint: %w", err)
	}
	tableID := ""
	if table != nil {
		tableID = table.ID()
	}
	if tableID != st.TableID {
		return nil, fmt.Errorf("search checkpoint: latency table: expected %q, got %q", st.TableID, tableID)
	}
	if rt != nil {
		st.Config.Backend, st.Config.Parallelism = rt.Backend, rt.Parallelism
	}
	s, err := New(plan, st.Config, table)
	if err != nil {
		return nil, fmt.Errorf("search checkpoint: %w", err)
	}
	fail := func(format string, args ...any) (*Searcher, error) {
		s.Close()
		return nil, fmt.Errorf("search checkpoint: "+format, args...)
	}
	for _, p := range s.params.list {
		t, ok := tensors[p.name]
		if !ok {
			return fail("tensor %q: missing", p.name)
		}
		if !slices.Equal(t.Shape, p.shape) {
			return fail("tensor %q: expected shape %v, got %v", p.name, p.shape, t.Shape)
		}
		copy(p.w, t.Data)
		if m, ok := tensors[momentumPrefix+p.name]; ok {
			if !slices.Equal(m.Shape, p.shape) {
				return fail("tensor %q: expected shape %v, got %v", momentumPrefix+p.name, p.shape, m.Shape)
			}
			p.buf = append([]float32(nil), m.Data...)
		}
	}
	if want := len(s.params.list); len(tensors) < want {
		return fail("expected at least %d tensors, got %d", want, len(tensors))
	}
	if err := sameShape2("alpha", s.alpha, st.Alpha); err != nil {
		return fail("%v", err)
	}
	if err := sameShape2("adam_m", s.adamM, st.AdamM); err != nil {
		return fail("%v", err)
	}
	if err := sameShape2("adam_v", s.adamV, st.AdamV); err != nil {
		return fail("%v", err)
	}
	if len(st.AdamT) != len(s.adamT) {
		return fail("adam_t: expected %d entries, got %d", len(s.adamT), len(st.AdamT))
	}
	s.alpha, s.adamM, s.adamV, s.adamT = st.Alpha, st.AdamM, st.AdamV, st.AdamT
	if err := s.sampleSrc.UnmarshalBinary(st.Sample); err != nil {
		return fail("sample_rng: %v", err)
	}
	if err := s.augSrc.UnmarshalBinary(st.Aug); err != nil {
		return fail("aug_rng: %v", err)
	}
	s.pos = st.Position
	if st.Baseline != nil {
		s.rl = rlState{baseline: *st.Baseline, set: true}
	}
	return s, nil
}

func sameShape2(name string, want, got [][]float64) error {
	if len(want) != len(got) {
		return fmt.Errorf("%s: expected %d layers, got %d", name, len(want), len(got))
	}
	for l := range want {
		if len(want[l]) != len(got[l]) {
			return fmt.Errorf("%s[%d]: expected %d values, got %d", name, l, len(want[l]), len(got[l]))
		}
	}
	return nil
}
