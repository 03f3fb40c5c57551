package search

import (
	"fmt"

	"github.com/pnasml/pnas/data"
)

// RecalibrateBN re-estimates the BN running statistics of the network
// choosing candidate choice[l] at every layer: it runs that fixed network in
// train mode over up to maxImages images of ds (in order, in batches of
// ArchBatchSize) and sets every BN layer's running mean and variance to the
// average of the batch statistics. During a search each candidate's running
// statistics were collected under ever-changing upstream paths, so they do
// not describe the derived network; call this before Derive. Weights,
// alpha and optimizer state are untouched.
func (s *Searcher) RecalibrateBN(ds *data.Dataset, norm data.Normalization, choice []int, maxImages int) error {
	if err := checkChoice(s.plan, "recalibrate", choice); err != nil {
		return err
	}
	defer s.stepMemory()()
	bs := s.cfg.ArchBatchSize
	n := min(ds.Len(), maxImages)
	if n < 2 {
		return fmt.Errorf("search: recalibrate: expected at least 2 images, got %d", n)
	}
	type acc struct {
		mean, vari []float64
	}
	sums := map[string]*acc{}
	var order []string
	batches := 0
	var buf []float32
	for start := 0; start+2 <= n; start += bs {
		end := min(start+bs, n)
		idx := make([]int, end-start)
		for i := range idx {
			idx[i] = start + i
		}
		var labels []int
		buf, labels = ds.Batch(idx, norm, nil, nil, buf)
		out, err := s.runNet(buf, labels, netRun{choice: choice})
		if err != nil {
			return err
		}
		for _, st := range out.bn {
			bm, bv := out.res.vals[st.meanO], out.res.vals[st.varO]
			a := sums[st.prefix]
			if a == nil {
				a = &acc{mean: make([]float64, len(bm)), vari: make([]float64, len(bv))}
				sums[st.prefix] = a
				order = append(order, st.prefix)
			}
			unbias := 1.0
			if st.count > 1 {
				unbias = float64(st.count) / float64(st.count-1)
			}
			for c := range bm {
				a.mean[c] += bm[c]
				a.vari[c] += bv[c] * unbias
			}
		}
		batches++
	}
	for _, prefix := range order {
		a := sums[prefix]
		_, _, mn, vr := bnNames(prefix)
		rm, rv := s.params.get(mn).w, s.params.get(vr).w
		for c := range rm {
			rm[c] = float32(a.mean[c] / float64(batches))
			rv[c] = float32(a.vari[c] / float64(batches))
		}
	}
	return nil
}
