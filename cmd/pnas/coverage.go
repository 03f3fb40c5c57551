package main

import (
	"fmt"
	"strings"

	"github.com/pnasml/pnas/search/space"
	"github.com/pnasml/pnas/targets"
)

// spaceKeys lists, in plan order without repeats, every latency key an
// architecture of the plan can need: the fixed parts and every non-Zero
// candidate at every layer.
func spaceKeys(p *space.Plan) []string {
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if k != "" && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, k := range p.FixedKeys() {
		add(k)
	}
	for _, l := range p.Layers {
		for _, c := range l.Candidates {
			add(l.Key(c))
		}
	}
	return out
}

// missingKeys returns the keys of the plan the table has no entry for.
func missingKeys(p *space.Plan, l *targets.LUT) []string {
	var out []string
	for _, k := range spaceKeys(p) {
		if _, ok := l.Entries[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// coverageError describes a table that does not cover its space.
func coverageError(sp string, total int, missing []string) error {
	show := missing
	more := ""
	if len(show) > 5 {
		show, more = show[:5], fmt.Sprintf(" and %d more", len(missing)-5)
	}
	return fmt.Errorf("the reports cover %d of the %d latency keys of space %s; missing %s%s (a search on this table would fail with \"missing key\"): "+
		"bring back the report of every network of the profiling program (for m in $(./profile -list | cut -f1); do ./profile -model $m -threads N -bench 200 -json > $m.json; done), "+
		"or pass --partial to write the table anyway",
		total-len(missing), total, sp, strings.Join(show, ", "), more)
}
