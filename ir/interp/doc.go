// Package interp is the reference interpreter of the pnas IR: the oracle
// every backend and every IR-to-IR pass is tested against.
//
// It executes a verified [ir.Model] op by op on one sample at a time,
// following the op semantics documented in package ir literally: tensors
// are stored as float32, every sum (convolution, dense, pooling, softmax)
// is accumulated in float64 and rounded once when stored. It favours
// clarity over speed and is not meant for production inference.
//
// [Run] returns the model output; [RunTensors] returns every tensor, which
// is what a backend's per-layer test compares against. Both verify the
// model first and return errors, never panic, on a bad model or input.
//
// Package interp imports only package ir and the standard library.
package interp
