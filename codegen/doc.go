// Package codegen turns a verified, pass-optimised ir.Model into a
// self-contained Go module: a generated main.go with the layer sequence as
// straight-line calls (every shape a constant), the weights as one embedded
// blob, and copies of the runtime kernels the model needs. Code is emitted
// with github.com/dave/jennifer and is deterministic.
//
// Package codegen may import ir, ir/pass, runtime (for its kernel file
// lists), targets and jennifer; generated programs import only the copied
// runtime files and the standard library.
package codegen
