// Package codegen compiles pnas models into standalone Go programs: the
// back end of `pnas compile`.
//
// [Generate] takes verified models and a target and produces a [Program],
// a Go module held in memory. A front end shared by every device checks
// the models, computes their ids and timed layers, runs the IR passes of
// package ir/pass (dead ops, batchnorm folding, residual and activation
// fusion, so that an MBConv block becomes three convolutions with fused
// epilogues) and collects the weights blob. A back end per device kind of
// the target (backend.go) then runs four stages on each model, and adds
// the module's other files. The CPU back end
//
//  1. lowers (lower.go) every op onto one runtime operator (pointwise,
//     depthwise, dense or grouped convolution, linear, pooling,
//     elementwise) and gives every tensor its runtime layout:
//     channels-last, channel stride PadC(C), and the zero halo its
//     readers need; an inverted-residual block whose expanded tensor
//     exceeds FuseMBConvBytes (fuse.go, the one rule; [Options].FuseMBConv
//     forces it on or off) becomes one fused rt.MBConv call that runs in
//     row strips, and so does a block without expansion (depthwise →
//     project) whose depthwise output exceeds it; for amd64 targets, a
//     smaller block of at most SplitMBConvRows output rows also gets an
//     rt.MBConv that runs it split by channels (MBConv.RunChannelsIn)
//     whenever the program runs on more than one thread, its three
//     operators running it on one;
//  2. plans memory (plan.go): tensors that may share storage (a flatten
//     that only reinterprets, an output written over its dying residual)
//     share a buffer, and the buffers are placed in one activation arena
//     by liveness, at the lower bound of the bytes live during any op
//     when the search finds it ([MemoryPlan]); a buffer whose halo may
//     hold another buffer's values clears it before its first write,
//     unless an earlier buffer of the same place and layout cleared it in
//     the same inference and nothing else wrote there since;
//  3. packs (weights.go) the weights in each operator's layout, now that
//     the channel strides are known, into one little-endian float32 blob;
//  4. emits (emit.go) model.go with github.com/dave/jennifer: the network
//     as straight-line operator calls, every shape a constant.
//
// The module also holds main.go (the embedded blob and the program
// table), the program shell (package codegen/shell, copied into package
// main: flags, input decoding, top-k, the -bench timing loop) and a copy
// of the runtime package in rt/, with CPUID-based feature detection in
// place of golang.org/x/sys/cpu so that go.mod needs no requirements.
// Output is deterministic and every file carries the [Banner].
//
// The CUDA back end (cuda.go, for targets of device cuda) lowers every op
// onto one GPU kernel generated from the kernel description of package
// codegen/gpu, places a batch's activations in one device arena, emits
// model.go as a table of kernel launches and timed layers, and adds the PTX
// of every kernel for sm_80 and sm_90, the program shell of package
// codegen/cudashell and a go.mod requiring github.com/ebitengine/purego,
// which loads the CUDA driver at run time; docs/cuda.md describes it.
//
// [Program.Write] writes the module and [Build] runs go build with cgo off,
// -trimpath, the target's GOOS, GOARCH and GOAMD64 and its kernel set's
// build tags (noasm for the portable set), all from targets/presets.json,
// whose kernel_sets TestKernelSetTable checks the runtime's copies and the
// CPUID detection of generated programs against. [GenerateAndBuild] does
// all three in one call for the tools that build programs to run (pnas
// profile and pareto, the latency benchmark, the GPU check); pnas compile
// keeps its own steps, since it reports the generated program between
// them and may stop before building. docs/compile.md describes the generated
// program.
//
// Package codegen imports ir, ir/pass, runtime (weight packing),
// codegen/gpu, targets, jennifer and the standard library; generated CPU
// programs import only their own packages and the standard library, CUDA
// programs also purego.
package codegen
