// Package gx holds the GoMLX building blocks of the pnas supernet, written
// for GoMLX's pure-Go backend (simplego): matrix products, slices,
// convolutions, batch normalization and losses expressed through the ops
// that backend runs well, each with a reverse-mode gradient (VJP) that uses
// only ops the backend implements.
//
// GoMLX's own gradients do not fit that backend: the gradient of a slice
// needs Pad and the gradient of a convolution needs Reverse, which simplego
// lacks, and the gradient of a matrix product is a broadcast product
// followed by a reduction, which simplego materializes in full. gx gives
// the nodes it creates their own VJPs: a side table maps each such node to
// its VJP, and wrappers installed in graph.VJPRegistration for the affected
// node types consult the table first and fall back to GoMLX's VJP for every
// other node. Release drops a finished graph's entries. Custom turns any
// subgraph into one differentiable op with a hand-written gradient;
// Depthwise and the batch norms carry theirs on a small input of their last
// node instead, so their backward passes are a few large ops instead of
// GoMLX's op-by-op chain and their forward passes cost nothing extra.
//
// On pnas's own backend (NativeBackend, package search/internal/pnasbe)
// some blocks take a direct form instead: Depthwise is one grouped
// ConvGeneral whose VJP is two ConvGenerals (input and kernel gradients, as
// a framework writes them), which that backend runs as depthwise kernels;
// per-channel broadcasts are one BroadcastInDim and per-channel sums one
// ReduceSum. simplego keeps the forms above.
//
// The VJP wrappers are installed in graph.VJPRegistration once, when the
// package is initialized, for DotGeneral, Slice, Clamp, Identity, Add and
// ConvGeneral; for every node that gx did not create they call the VJP that
// was registered before, so other GoMLX users in the same process see
// GoMLX's gradients unchanged (at the cost of one map lookup per node).
//
// Activations use the layout [C, N, H, W] (channels first), so a 1x1
// convolution is one matrix product and per-channel statistics reduce a
// contiguous row.
//
// Memory: backward passes rebuild what they need from tensors the network
// keeps anyway (nothing kernel-sized outlives its op), PlanMemory predicts
// a graph's working set, and ops that would otherwise run early under
// concurrent execution are tied to the data they follow (the zeros,
// broadcasts and stacks built inside gx), so running independent ops
// concurrently holds about what running them one at a time holds.
//
// Package gx imports the standard library and GoMLX's graph, shapes,
// dtypes and tensors packages.
package gx
