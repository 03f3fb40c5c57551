// Package ir defines the pnas model intermediate representation: the one
// format that crosses every stage of the toolchain. The searcher writes it,
// the compiler reads it, and ONNX import maps onto it.
//
// A [Model] is a straight-line graph of primitive ops (2-D convolution,
// batch normalization, activation, element-wise add, global average pool,
// flatten, dense, softmax). Every op names its input tensors and its output
// tensor; weights live in [Model.Params] under "<op name>.<role>" keys.
// On disk a model is NAME.json (the versioned schema, see docs/ir.md) plus
// NAME.safetensors (the weights).
//
// [Verify] infers every tensor shape and checks every invariant; errors name
// the op and the field and say what was expected and what was found.
// [Model.Stats] computes parameters, MACs and peak activation memory.
// [Block] annotations carry which block of a search space an op implements;
// ir stores them and leaves their meaning (candidate names, latency-table
// keys) to the search space's packages, search/space and internal/archnet.
//
// The reference interpreter lives in package ir/interp and the IR-to-IR
// passes in package ir/pass.
//
// Package ir imports only the standard library and internal/atomicfile,
// through which Save writes a model all-or-nothing.
package ir
