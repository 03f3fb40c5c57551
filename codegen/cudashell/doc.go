// Package cudashell is the program shell of pnas compile's CUDA target:
// copied into package main of every generated CUDA program next to the
// generated model.go (kernel launches, layers) and main.go (embedded
// weights and PTX).
//
// The program loads libcuda.so.1 at run time through
// github.com/ebitengine/purego, so it builds with cgo off on a machine
// without the CUDA toolkit or driver. One OS thread holds the CUDA
// context; the weights are uploaded once; the PTX for the device's
// architecture (sm_90 for compute capability 9.x, sm_80 otherwise) is
// compiled by the driver at load, and a JIT failure shows the driver's
// error log. The forward runs as one CUDA graph (-graph, default) or as
// eager launches; -bench times each layer with events around its
// launches and the whole forward. Without a driver or a GPU the program
// prints one line ("no CUDA driver: libcuda.so.1 not found", "no CUDA
// device") and exits with status 1.
//
// The flags are the CPU programs' (-input, -index, -k, -json, -bench,
// -warmup, -model, -list; -threads is accepted and ignored) plus -batch N
// and -graph. Input decoding, the -json shapes and the bench report are
// the CPU shell's: zshared.go is generated from package codegen/shell
// (go generate; a test fails when it is stale).
//
// Only generated CUDA programs import this package's code, and so
// purego: CPU programs and the runtime stay free of it.
package cudashell

//go:generate go test ./internal/gen -run TestSharedIsCurrent -update
