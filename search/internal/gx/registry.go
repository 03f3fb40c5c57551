package gx

import (
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Node and Graph are GoMLX's graph types.
type (
	Node  = graph.Node
	Graph = graph.Graph
)

var (
	mu      sync.Mutex
	custom  = map[*Node]graph.VJP{}
	byGraph = map[*Graph][]*Node{}

	// zeros caches zeroOf per node; byGraphZeros lists the keys per graph.
	zeros        = map[*Node]*Node{}
	byGraphZeros = map[*Graph][]*Node{}
)

// wrapped lists the node types whose VJP may be overridden per node.
var wrapped = []graph.NodeType{
	graph.NodeTypeDotGeneral,
	graph.NodeTypeSlice,
	graph.NodeTypeClamp,
	graph.NodeTypeIdentity,
	graph.NodeTypeAdd,
	graph.NodeTypeConvGeneral,
}

func init() {
	for _, t := range wrapped {
		orig := graph.VJPRegistration[t]
		t := t
		graph.VJPRegistration[t] = func(node *Node, v []*Node, out shapes.Shape) []*Node {
			mu.Lock()
			f := custom[node]
			mu.Unlock()
			if f != nil {
				return f(node, v, out)
			}
			if orig == nil {
				panic(fmt.Sprintf("gx: no gradient defined for %s node %s", t, node))
			}
			return orig(node, v, out)
		}
	}
}

// setVJP gives node n its own VJP.
func setVJP(n *Node, f graph.VJP) {
	mu.Lock()
	defer mu.Unlock()
	custom[n] = f
	g := n.Graph()
	byGraph[g] = append(byGraph[g], n)
}

// Release forgets the custom VJPs and cached zeros of g's nodes. Call it
// once g will not be differentiated again (after Compile).
func Release(g *Graph) {
	mu.Lock()
	defer mu.Unlock()
	for _, n := range byGraph[g] {
		delete(custom, n)
	}
	delete(byGraph, g)
	for _, n := range byGraphZeros[g] {
		delete(zeros, n)
	}
	delete(byGraphZeros, g)
}

// numCustom returns how many nodes have custom VJPs or cached zeros (for
// leak tests).
func numCustom() int {
	mu.Lock()
	defer mu.Unlock()
	return len(custom) + len(zeros)
}

// NumCustom returns how many nodes currently have a custom VJP or a
// cached zero; it is 0 when every graph built with gx has been released.
func NumCustom() int { return numCustom() }
