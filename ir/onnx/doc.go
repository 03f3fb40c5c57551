// Package onnx converts between ONNX models and the pnas IR.
//
// [Import] maps an ONNX ModelProto of the MobileNet family into an
// [ir.Model] with its weights. One table in import.go holds, per operator,
// the attributes and inputs it accepts, the rank of its activation input and
// its converter; the operators it lists ([SupportedOps]) are
//
//	Add, BatchNormalization, Clip, Constant, Conv, Dropout, Flatten, Gemm,
//	GlobalAveragePool, Identity, MatMul, Relu, Reshape, Softmax
//
// (Clip as ReLU6 or ReLU, MatMul with a constant Add after it as a dense
// layer with bias, Reshape only as a flatten; docs/onnx.md has the details).
// Anything else is an error naming the node, the op and the attribute. [Export] writes an IR model as
// an opset-13 ModelProto that ONNX Runtime runs, so a searched model can be
// checked against an independent engine.
//
// The protobuf layer ([DecodeModel], [ModelProto.Marshal]) is a hand-written
// reader and writer of the ONNX subset that pnas uses, built on
// google.golang.org/protobuf/encoding/protowire with field numbers from the
// ONNX specification's onnx.proto; no generated code is involved. Malformed
// input yields a [DecodeError] with the byte offset, never a panic.
//
// Package onnx imports only the standard library,
// google.golang.org/protobuf/encoding/protowire and package ir.
package onnx
