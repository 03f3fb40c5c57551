package gx

import (
	"slices"
	"sort"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// DotGeneral is graph.DotGeneral with a VJP made of two DotGenerals and
// transposes (GoMLX's default VJP broadcasts to the full product first).
// Output axes are the batch axes, then lhs's and rhs's free axes in order.
func DotGeneral(lhs *Node, lhsContract, lhsBatch []int, rhs *Node, rhsContract, rhsBatch []int) *Node {
	lc, lb := slices.Clone(lhsContract), slices.Clone(lhsBatch)
	rc, rb := slices.Clone(rhsContract), slices.Clone(rhsBatch)
	out := graph.DotGeneral(lhs, lc, lb, rhs, rc, rb)
	setVJP(out, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
		v := vs[0]
		lx := freeAxes(lhs.Rank(), lc, lb)
		rx := freeAxes(rhs.Rank(), rc, rb)
		nb := len(lb)
		vb := iota(0, nb)
		vlx := iota(nb, len(lx))
		vrx := iota(nb+len(lx), len(rx))
		// d lhs: contract v's rhs-free axes with rhs's free axes.
		dl := graph.DotGeneral(v, vrx, vb, rhs, rx, rb)
		dl = arrange(dl, concat(lb, lx, pairedSorted(rc, lc)))
		// d rhs: contract v's lhs-free axes with lhs's free axes.
		dr := graph.DotGeneral(v, vlx, vb, lhs, lx, lb)
		dr = arrange(dr, concat(rb, rx, pairedSorted(lc, rc)))
		return []*Node{dl, dr}
	})
	return out
}

// MatMul multiplies [m,k] by [k,n].
func MatMul(a, b *Node) *Node { return DotGeneral(a, []int{1}, nil, b, []int{0}, nil) }

// freeAxes returns the axes of a rank-r operand that are neither
// contracted nor batch, in increasing order.
func freeAxes(r int, contract, batch []int) []int {
	var out []int
	for a := 0; a < r; a++ {
		if !slices.Contains(contract, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

// pairedSorted returns, for the axes of `other` sorted increasingly, the
// paired axes of `this` (other[i] pairs with this[i]).
func pairedSorted(other, this []int) []int {
	idx := iota(0, len(other))
	sort.Slice(idx, func(i, j int) bool { return other[idx[i]] < other[idx[j]] })
	out := make([]int, len(idx))
	for i, k := range idx {
		out[i] = this[k]
	}
	return out
}

// arrange transposes d, whose axis i holds the operand's axis order[i], back
// to the operand's axis order.
func arrange(d *Node, order []int) *Node {
	perm := make([]int, len(order))
	identity := true
	for i, a := range order {
		perm[a] = i
	}
	for i, p := range perm {
		if i != p {
			identity = false
		}
	}
	if identity {
		return d
	}
	return graph.TransposeAllAxes(d, perm...)
}

func iota(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}

func concat(parts ...[]int) []int {
	var out []int
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
