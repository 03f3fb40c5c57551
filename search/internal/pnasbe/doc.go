// Package pnasbe is a GoMLX backend of pnas's own, registered as "pnas":
// it runs the searcher's training graphs on the float32 kernels of
// runtime/kernels.
//
// The Builder records every op into the backend's own graph; Compile keeps
// the ops the outputs need, in creation order (a topological order), and
// counts each value's readers. An execution runs the ops one at a time;
// each op splits its work over up to Workers goroutines with a fixed
// partition, and every output element is computed by one goroutine in a
// fixed order, so the same inputs give bit-identical outputs whatever the
// number of workers. A value's memory goes back to the execution's pool
// after its last reader, and the next op of the same dtype and size class
// (an eighth of an octave; a free buffer up to twice the size also
// serves) reuses it; Reshape and Identity are views. When an execution ends its free
// buffers go to the backend's keep, which the next executions draw from;
// the keep is bounded by the working set of the largest recent execution
// (halving each time a smaller one ends), so the backend owns its memory
// and sets no process-wide GC or memory-limit setting.
//
// Depthwise convolutions are ConvGeneral ops in the [C, N, H, W] layout
// (see conv.go: the forward pass and both gradients as a framework writes
// them), run by kernels.DepthwiseForward, DepthwiseBackwardData and
// DepthwiseBackwardFilter; other convolutions are refused when the graph is
// built. Compile fuses Where(LogicalAnd(y > lo, y < hi), t, f) with scalar
// bounds (a clamp's gradient mask) into one pass (kernels.ReLU6Grad for
// lo = 0, hi = 6, f = 0).
//
// Compile then fuses trees of float element-wise ops whose inner values
// have no other reader (fuseexpr.go): each runs as one op over tiles of
// its output, intermediate values in per-goroutine tile registers, its
// inputs read in place, per-row broadcasts (a batch norm's per-channel
// vectors over [C, N, H, W]) from their source, so those broadcasts are
// never materialized. Every op rounds as it does alone, so the results are
// those of the unfused graph bit for bit. A fused op writes over an input
// it is the last reader of, and a per-row product of its output with
// itself (a batch norm's variance) is computed row by row as it writes
// them. EnableProfile and WriteProfile time the ops by type and shape.
//
// DotGeneral maps to one batched matrix product (kernels.SgemmBatched):
// operands whose axes are already in (batch, rows, columns) or (batch,
// columns, rows) order are read in place with the transpose flag; others
// are transposed into scratch first. Transpose, Slice, BroadcastInDim,
// Concatenate and Pad are one strided copy each, with contiguous runs moved
// by copy. Reductions bring the reduced axes together as [O, R, I] and
// combine the R rows in order.
//
// float32 is the backend's working type; float64, int32, int64 and bool are
// supported by the same ops for the gradient checks and small index
// computations. Ops outside the searcher's needs answer GoMLX's
// not-implemented error.
package pnasbe
