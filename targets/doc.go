// Package targets describes the hardware pnas compiles for and searches
// against, as data, and owns the latency model of each target.
//
// Targets. A [Target] names a device: GOOS/GOARCH/GOAMD64, the CPU
// features it guarantees, the kernel set compiled programs use, the device
// kind that runs them ([Target.DeviceKind]: the CPU or a CUDA GPU), the
// thread count and its latency table. The presets (amd64, amd64-avx512,
// arm64 and the arm64 device presets arm64/cortex-a72, arm64/cortex-a76,
// arm64/neoverse-n1, arm64/neoverse-v1, generic, cuda)
// and the kernel sets live in the embedded presets.json; users add devices as
// JSON files in directories given to [Lookup] and [List] or named by
// $PNAS_TARGETS. No other package branches on target names: they read
// these fields. [Target.HostSupports] checks the running CPU with
// golang.org/x/sys/cpu (for a CUDA target: that libcuda.so.1 is
// installed).
//
// Latency tables. A [LUT] (pnas-lut/1) maps latency keys (in the formats of
// package search/space; internal/archnet derives a model's keys from its
// block annotations) to measured block latencies and carries a
// [Correction]. Its [LUT.ID] is a content hash, checked on [Load]; tables
// are derived from measurements ([BuildLUT], [Calibrate]) and saved
// atomically, never edited by hand.
//
// Measurements. A [BenchReport] (pnas-bench/1) is what a compiled program
// prints with -bench N -json; [ParseBench] validates it. A measurement log
// is an append-only JSONL file of [Measurement] records (pnas-measure/1)
// written by [AppendMeasurements] and read by [ReadMeasurements].
//
// Prediction. [LUT.Predict] sums a network's entries and applies the
// correction, a ridge-regularised linear model fitted on whole measured
// networks by [Fit]; [Calibrate] refits entries and correction and reports
// the error on held-out networks. docs/latency.md describes every format and
// the maths.
//
// Package targets imports the standard library, golang.org/x/sys/cpu,
// package ir, internal/atomicfile (tables are written all-or-nothing) and the
// search space's vocabulary (search/space and internal/archnet) only.
package targets
