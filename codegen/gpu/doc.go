// Package gpu generates the GPU kernels of pnas compile's CUDA back end
// from a small kernel description, prints them as PTX and runs them in an
// emulator.
//
// A [Kernel] is a body of structured statements (registers, loops, ifs,
// global and shared loads and stores, block barriers) over typed
// expressions (int32, float32 with FMA, predicates, the thread and block
// indices) that every thread of a one-dimensional block runs. [PTX]
// prints kernels as a PTX module (ISA 7.8, sm_80 or sm_90, 64-bit
// addresses) for the CUDA driver to compile at load. [Run] executes the
// same description on the CPU: every block of the grid with its own
// shared memory, the threads of a block in lockstep so that barriers are
// where they all meet; it reports out-of-range accesses, barriers reached
// in divergent code and shared-memory races, errors a GPU leaves silent.
//
// The kernels ([Conv], [Pool], [Linear], [ScaleBias], [AddAct],
// [Activate], [Softmax]) work on batch-major NCHW float32 tensors with
// every shape a constant and the batch size a parameter: 1x1
// convolutions are tiled GEMMs staging slices of both operands in shared
// memory (64x64 tiles with 4x4 outputs a thread in registers from 48
// output channels up, 16x16 tiles below); depthwise, stem and grouped
// convolutions are direct
// (one output a thread); bias, residual and ReLU/ReLU6 are fused into the
// epilogues. [Lower] turns a pass-optimised ir model into kernel launches
// and the buffers of an activation arena, [Net.Plan] places the buffers by
// liveness and [Net.Pack] lays the weights out; [Net.Emulate] runs it, which is how the tests check every kernel against the
// reference interpreter without a GPU.
//
// Package gpu imports ir and the standard library.
package gpu
