package pnasbe

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
)

// Op profiling: when enabled, every executed op adds its wall time to a
// table keyed by op type and a description of its shapes.
var prof struct {
	sync.Mutex
	on    bool
	table map[string]*opStat
}

type opStat struct {
	n int
	d time.Duration
}

// EnableProfile turns op profiling on or off and clears the table.
func EnableProfile(on bool) {
	prof.Lock()
	defer prof.Unlock()
	prof.on, prof.table = on, map[string]*opStat{}
}

func profiling() bool {
	prof.Lock()
	defer prof.Unlock()
	return prof.on
}

func record(n *Node, d time.Duration) {
	key := n.op.String()
	if n.fused == fusedExpr {
		key = n.expr.String()
		for _, red := range n.rowReds {
			if red.node.op == backends.OpTypeReduceSum {
				key += "+RowSum"
			} else {
				key += "+RowDot"
			}
		}
	}
	if n.op == backends.OpTypeDotGeneral {
		a := n.attr.(*dotAttr)
		key = fmt.Sprintf("DotGeneral %v·%v c%v%v b%v%v", n.inputs[0].shape.Dimensions, n.inputs[1].shape.Dimensions, a.lc, a.rc, a.lb, a.rb)
	}
	prof.Lock()
	defer prof.Unlock()
	st := prof.table[key]
	if st == nil {
		st = &opStat{}
		prof.table[key] = st
	}
	st.n++
	st.d += d
}

// WriteProfile writes the op table, most time first, top entries only.
func WriteProfile(w io.Writer, top int) {
	prof.Lock()
	defer prof.Unlock()
	type row struct {
		k string
		s *opStat
	}
	var rows []row
	var total time.Duration
	for k, s := range prof.table {
		rows = append(rows, row{k, s})
		total += s.d
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].s.d > rows[j].s.d })
	fmt.Fprintf(w, "ops total %v\n", total)
	for i, r := range rows {
		if i == top {
			break
		}
		fmt.Fprintf(w, "%6.2f%% %10v %6d  %s\n", 100*float64(r.s.d)/float64(total), r.s.d, r.s.n, r.k)
	}
}
