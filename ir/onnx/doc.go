// Package onnx converts between ONNX models and the pnas IR.
//
// [Import] maps an ONNX ModelProto of the MobileNet family (Conv,
// BatchNormalization, Relu, Clip as ReLU6, Add, GlobalAveragePool, Flatten,
// Gemm, MatMul(+Add), flattening Reshape, Identity, Dropout, Softmax,
// Constant) into an [ir.Model] with its weights; anything else is an error
// naming the node, the op and the attribute. [Export] writes an IR model as
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
