package targets

import "github.com/pnasml/pnas/search/space"

// SearchTable is the view of a latency table that a search reads: the sum
// of Lookup over a network's keys is the table's prediction for the whole
// network.
type SearchTable struct {
	lut *LUT
	c   *CorrectedTable
}

// SearchTable returns the table a search should read. Without a fitted
// correction it is the table itself. With one, every entry is scaled by
// the correction of its key type, and the correction's per-inference
// overhead (when positive) is counted in the classifier ("Logits") entry,
// which every network has exactly once.
func (l *LUT) SearchTable() *SearchTable {
	t := &SearchTable{lut: l}
	if l.Correction != nil {
		t.c = l.Corrected()
	}
	return t
}

// ID identifies the table: the table's ID, with "/corrected" appended when
// the correction applies.
func (t *SearchTable) ID() string {
	if t.c != nil {
		return t.c.ID()
	}
	return t.lut.ID()
}

// Lookup returns the latency of key in µs as a search counts it.
func (t *SearchTable) Lookup(key string) (float64, bool) {
	if t.c == nil {
		return t.lut.Lookup(key)
	}
	v, ok := t.c.Lookup(key)
	if o := t.c.Overhead(); ok && o > 0 && space.KeyType(key) == space.LogitsType {
		v += o
	}
	return v, ok
}
