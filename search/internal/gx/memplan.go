package gx

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// MemoryPlan is the result of PlanMemory.
type MemoryPlan struct {
	// Peak is the largest number of bytes held at once by intermediate
	// tensors (graph inputs and constants excluded).
	Peak int64
	// PeakAt is the node whose execution reaches the peak.
	PeakAt *Node
	// Live lists the intermediate tensors held at the peak.
	Live []*Node
	// Inputs is the size of the graph's parameters.
	Inputs int64
	// Nodes is the number of nodes executed.
	Nodes int
}

// inPlace lists the node types whose simplego kernels write their output
// into an input buffer of the same shape when that input is at its last use.
var inPlace = map[graph.NodeType]bool{
	graph.NodeTypeAbs: true, graph.NodeTypeAdd: true, graph.NodeTypeSub: true,
	graph.NodeTypeMul: true, graph.NodeTypeDiv: true, graph.NodeTypeMax: true,
	graph.NodeTypeMin: true, graph.NodeTypePow: true, graph.NodeTypeNeg: true,
	graph.NodeTypeExp: true, graph.NodeTypeLog: true, graph.NodeTypeSqrt: true,
	graph.NodeTypeRsqrt: true, graph.NodeTypeTanh: true, graph.NodeTypeLogistic: true,
	graph.NodeTypeSign: true, graph.NodeTypeClamp: true, graph.NodeTypeWhere: true,
	graph.NodeTypeReshape: true, graph.NodeTypeIdentity: true,
}

// PlanMemory simulates how simplego, running ops one at a time in creation
// order, holds the intermediate tensors of g while computing outputs: a
// node's output is allocated when it runs (or written into an input at its
// last use, for element-wise ops and reshapes), and freed after its last
// consumer ran; outputs are held to the end. Buffers internal to a kernel
// (the packing of large matrix products) are not counted. The plan is a
// property of the graph alone, so tests can compare graphs without running
// them, and a runner can budget memory before running one. It costs two
// passes over the nodes.
func PlanMemory(g *Graph, outputs []*Node) MemoryPlan {
	var plan MemoryPlan
	peakID := simulate(g, outputs, -1, &plan)
	if peakID >= 0 {
		simulate(g, outputs, peakID, &plan)
	}
	return plan
}

// simulate runs the plan; with stopAt >= 0 it stops after that node and
// fills plan.Live. It returns the id of the node reaching the peak.
func simulate(g *Graph, outputs []*Node, stopAt int, plan *MemoryPlan) int {
	nodes := g.Nodes()
	needed := make([]bool, len(nodes))
	uses := make([]int, len(nodes))
	stack := make([]*Node, 0, len(outputs))
	isOutput := make([]bool, len(nodes))
	for _, o := range outputs {
		isOutput[o.Id()] = true
		stack = append(stack, o)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if needed[n.Id()] {
			continue
		}
		needed[n.Id()] = true
		stack = append(stack, n.Inputs()...)
	}
	for _, n := range nodes {
		if !needed[n.Id()] {
			continue
		}
		for _, in := range n.Inputs() {
			uses[in.Id()]++
		}
	}
	external := func(n *Node) bool {
		t := n.Type()
		return t == graph.NodeTypeParameter || t == graph.NodeTypeConstant
	}
	size := func(n *Node) int64 { return int64(n.Shape().Memory()) }
	holds := make([]int64, len(nodes)) // bytes a node's buffer holds while alive
	var live int64
	peakID := -1
	if stopAt < 0 {
		*plan = MemoryPlan{}
	}
	for _, n := range nodes {
		id := n.Id()
		if !needed[id] {
			continue
		}
		if stopAt < 0 {
			plan.Nodes++
			if n.Type() == graph.NodeTypeParameter {
				plan.Inputs += size(n)
			}
		}
		if external(n) {
			continue
		}
		// Allocate the output, unless an element-wise kernel reuses an input
		// at its last use.
		alloc := size(n)
		if inPlace[n.Type()] {
			for _, in := range n.Inputs() {
				if !external(in) && !isOutput[in.Id()] && uses[in.Id()] == 1 && in.Shape().Equal(n.Shape()) {
					alloc = 0
					holds[in.Id()] -= size(n) // the buffer now belongs to n
					break
				}
			}
		}
		live += alloc
		holds[id] = size(n)
		if stopAt < 0 && live > plan.Peak {
			plan.Peak, plan.PeakAt, peakID = live, n, int(id)
		}
		if int(id) == stopAt {
			plan.Live = plan.Live[:0]
			for _, m := range nodes[:id+1] {
				if needed[m.Id()] && holds[m.Id()] > 0 {
					plan.Live = append(plan.Live, m)
				}
			}
			return peakID
		}
		for _, in := range n.Inputs() {
			if external(in) {
				continue
			}
			uses[in.Id()]--
			if uses[in.Id()] == 0 && !isOutput[in.Id()] {
				live -= holds[in.Id()]
				holds[in.Id()] = 0
			}
		}
	}
	return peakID
}
