package ir_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
)

// verifyNet is a small model using every op type:
//
//	input[2,6,6] -> c1 conv 3x3 ->[4,6,6] -> bn -> act relu -> c2 conv 1x1 (bias) ->[2,6,6]
//	  -> add(c2, input) -> pool ->[2,1,1] -> flat ->[2] -> fc dense ->[3] -> sm softmax
func verifyNet(t testing.TB) *ir.Model {
	t.Helper()
	b := ir.NewBuilder("net", 2, 6, 6, nil)
	x := b.Conv("c1", b.Input(), 4, 3, 1, 1)
	x = b.BatchNorm("bn", x, nil, nil, nil, nil)
	x = b.Act("act", x, ir.ActReLU)
	x = b.ConvFull("c2", x, 2, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, true, nil, nil)
	x = b.Add("add", x, b.Input())
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	x = b.Dense("fc", x, 3, nil, nil)
	x = b.Softmax("sm", x)
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func opNamed(m *ir.Model, name string) *ir.Op {
	for i := range m.Ops {
		if m.Ops[i].Name == name {
			return &m.Ops[i]
		}
	}
	panic("no op " + name)
}

// wantErr fails unless err is non-nil and contains every substring.
func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q\n  lacks %q", err, s)
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := []struct {
		name   string
		mutate func(m *ir.Model)
		want   []string
	}{
		// model level
		{"wrong format", func(m *ir.Model) { m.Format = "onnx" },
			[]string{`format: expected "pnas-ir", got "onnx"`}},
		{"wrong version", func(m *ir.Model) { m.Version = 2 },
			[]string{"version: unsupported format version: expected 1, got 2"}},
		{"no ops", func(m *ir.Model) { m.Ops = nil; m.Params = nil },
			[]string{"ops: expected at least one op, got none"}},
		{"output undefined", func(m *ir.Model) { m.Output = "logits" },
			[]string{`output: tensor "logits" is not produced by any op`}},
		{"output is a map", func(m *ir.Model) { m.Output = "pool" },
			[]string{`output: expected a vector of class scores, tensor "pool" has shape [2 1 1]`}},

		// input specification
		{"input name", func(m *ir.Model) { m.Input.Name = "" },
			[]string{`input.name: expected a tensor name, got ""`}},
		{"input rank", func(m *ir.Model) { m.Input.Shape = []int{2, 6} },
			[]string{"input.shape: expected [C,H,W], got [2 6]"}},
		{"input size", func(m *ir.Model) { m.Input.Shape[2] = 0 },
			[]string{"input.shape[2]: expected a size in 1..65536, got 0"}},
		{"input layout", func(m *ir.Model) { m.Input.Layout = "NHWC" },
			[]string{`input.layout: expected "NCHW", got "NHWC"`}},
		{"mean length", func(m *ir.Model) { m.Input.Mean = []float32{0.5} },
			[]string{"input.mean: expected 2 values (one per channel), got 1"}},
		{"std length", func(m *ir.Model) { m.Input.Std = []float32{1, 1, 1} },
			[]string{"input.std: expected 2 values (one per channel), got 3"}},
		{"std zero", func(m *ir.Model) { m.Input.Std = []float32{0.2, 0} },
			[]string{"input.std[1]: expected a positive finite number, got 0"}},
		{"std negative", func(m *ir.Model) { m.Input.Std = []float32{-1, 1} },
			[]string{"input.std[0]: expected a positive finite number, got -1"}},
		{"mean NaN", func(m *ir.Model) { m.Input.Mean = []float32{0, nan} },
			[]string{"input.mean[1]: expected a finite number, got NaN"}},
		{"labels count", func(m *ir.Model) { m.Input.Labels = []string{"a", "b"} },
			[]string{"input.labels: expected 3 labels (one per output), got 2"}},

		// op identity and wiring
		{"unknown op type", func(m *ir.Model) { opNamed(m, "act").Type = "gelu" },
			[]string{`op "act": type: unknown op type "gelu" (expected one of conv2d, batchnorm, activation, add, global_avg_pool, flatten, dense, softmax)`}},
		{"missing type", func(m *ir.Model) { opNamed(m, "act").Type = "" },
			[]string{`op "act": type: missing op type`}},
		{"missing name", func(m *ir.Model) { opNamed(m, "act").Name = "" },
			[]string{`op "#2": name: expected a name`, `got ""`}},
		{"bad name", func(m *ir.Model) { opNamed(m, "act").Name = "a b" },
			[]string{`op "#2": name:`, `got "a b"`}},
		{"duplicate name", func(m *ir.Model) { opNamed(m, "act").Name = "bn" },
			[]string{`op "bn": name: expected a unique op name, got the name of op #1 again at op #2`}},
		{"duplicate output", func(m *ir.Model) { opNamed(m, "act").Output = "c1" },
			[]string{`op "act": output: tensor "c1" is already defined`}},
		{"output shadows input", func(m *ir.Model) { opNamed(m, "c1").Output = "input" },
			[]string{`op "c1": output: tensor "input" is already defined`}},
		{"undefined input", func(m *ir.Model) { opNamed(m, "act").Inputs = []string{"nope"} },
			[]string{`op "act": inputs[0]: tensor "nope" is not defined by the input or an earlier op`}},
		{"input defined later", func(m *ir.Model) { opNamed(m, "act").Inputs = []string{"c2"} },
			[]string{`op "act": inputs[0]: tensor "c2" is not defined`}},
		{"add one input", func(m *ir.Model) { opNamed(m, "add").Inputs = []string{"c2"} },
			[]string{`op "add": inputs: expected 2 inputs, got 1`}},
		{"act two inputs", func(m *ir.Model) { opNamed(m, "act").Inputs = []string{"bn", "bn"} },
			[]string{`op "act": inputs: expected 1 inputs, got 2`}},
		{"conv three inputs", func(m *ir.Model) { opNamed(m, "c1").Inputs = []string{"input", "input", "input"} },
			[]string{`op "c1": inputs: expected 1 or 2 inputs, got 3`}},

		// shapes
		{"add unequal shapes", func(m *ir.Model) { opNamed(m, "add").Inputs = []string{"c2", "c1"} },
			[]string{`op "add": inputs: expected equal shapes, got [2 6 6] ("c2") and [4 6 6] ("c1")`}},
		{"dense on a map", func(m *ir.Model) { opNamed(m, "fc").Inputs = []string{"pool"} },
			[]string{`op "fc": inputs[0]: expected a vector, tensor "pool" has shape [2 1 1]`}},
		{"conv on a vector", func(m *ir.Model) {
			m.Ops = append(m.Ops, ir.Op{Name: "c3", Type: ir.OpConv2D, Inputs: []string{"flat"}, Output: "c3",
				OutChannels: 1, Kernel: []int{1, 1}, Stride: []int{1, 1}, Pads: []int{0, 0, 0, 0}, Groups: 1})
		},
			[]string{`op "c3": inputs[0]: expected a [C,H,W] map, tensor "flat" has shape [2]`}},
		{"softmax on a map", func(m *ir.Model) { opNamed(m, "sm").Inputs = []string{"pool"} },
			[]string{`op "sm": inputs[0]: expected a vector, tensor "pool" has shape [2 1 1]`}},
		{"groups do not divide", func(m *ir.Model) { opNamed(m, "c1").Groups = 3 },
			[]string{`op "c1": groups: input channels 2 and out_channels 4 must both be divisible by groups 3`}},
		{"groups zero", func(m *ir.Model) { opNamed(m, "c1").Groups = 0 },
			[]string{`op "c1": groups: expected a positive group count, got 0`}},
		{"kernel larger than padded input", func(m *ir.Model) { opNamed(m, "c1").Kernel = []int{9, 3} },
			[]string{`op "c1": kernel: kernel 9x3 is larger than the padded input 8x8`}},
		{"kernel rank", func(m *ir.Model) { opNamed(m, "c1").Kernel = []int{3} },
			[]string{`op "c1": kernel: expected [kh, kw] with sizes in 1..64, got [3]`}},
		{"stride zero", func(m *ir.Model) { opNamed(m, "c1").Stride = []int{0, 1} },
			[]string{`op "c1": stride: expected [sh, sw] with strides in 1..64, got [0 1]`}},
		{"pads count", func(m *ir.Model) { opNamed(m, "c1").Pads = []int{1, 1} },
			[]string{`op "c1": pads: expected [top, left, bottom, right], got [1 1]`}},
		{"pads negative", func(m *ir.Model) { opNamed(m, "c1").Pads = []int{1, 1, -1, 1} },
			[]string{`op "c1": pads: expected paddings in 0..64, got -1 at index 2`}},
		{"out_channels zero", func(m *ir.Model) { opNamed(m, "c1").OutChannels = 0 },
			[]string{`op "c1": out_channels: expected a positive count, got 0`}},
		{"units zero", func(m *ir.Model) { opNamed(m, "fc").Units = 0 },
			[]string{`op "fc": units: expected a positive count, got 0`}},
		{"residual shape mismatch", func(m *ir.Model) { opNamed(m, "c2").Inputs = []string{"act", "c1"} },
			[]string{`op "c2": inputs[1]: residual tensor "c1" has shape [4 6 6], expected the output shape [2 6 6]`}},

		// weights
		{"missing weight", func(m *ir.Model) { delete(m.Params, "c1.weight") },
			[]string{`op "c1": weights: missing weight "c1.weight" of shape [4 2 3 3]`}},
		{"missing bias", func(m *ir.Model) { delete(m.Params, "c2.bias") },
			[]string{`op "c2": weights: missing weight "c2.bias" of shape [2]`}},
		{"missing bn stat", func(m *ir.Model) { delete(m.Params, "bn.mean") },
			[]string{`op "bn": weights: missing weight "bn.mean" of shape [4]`}},
		{"mis-shaped weight", func(m *ir.Model) { m.Params["c1.weight"].Shape = []int{4, 2, 9} },
			[]string{`op "c1": weights: weight "c1.weight": expected shape [4 2 3 3], got [4 2 9]`}},
		{"dense weight transposed", func(m *ir.Model) { m.Params["fc.weight"].Shape = []int{2, 3} },
			[]string{`op "fc": weights: weight "fc.weight": expected shape [3 2], got [2 3]`}},
		{"weight data short", func(m *ir.Model) { p := m.Params["fc.bias"]; p.Data = p.Data[:2] },
			[]string{`op "fc": weights: weight "fc.bias": expected 3 values, got 2`}},
		{"extra weight", func(m *ir.Model) { m.Params["act.weight"] = ir.NewTensor(1) },
			[]string{`weights: weight "act.weight" belongs to no op`}},
		{"bias without bias flag", func(m *ir.Model) { opNamed(m, "c2").Bias = false },
			[]string{`weights: weight "c2.bias" belongs to no op`}},
		{"NaN weight", func(m *ir.Model) { m.Params["bn.scale"].Data[1] = nan },
			[]string{`op "bn": weights: weight "bn.scale": value 1 is NaN, expected a finite number`}},
		{"Inf weight", func(m *ir.Model) { m.Params["fc.weight"].Data[5] = -inf },
			[]string{`op "fc": weights: weight "fc.weight": value 5 is -Inf, expected a finite number`}},
		{"negative variance", func(m *ir.Model) { m.Params["bn.var"].Data[3] = -0.5 },
			[]string{`op "bn": weights: weight "bn.var": value 3 is -0.5, expected a variance >= 0`}},
		{"epsilon zero", func(m *ir.Model) { opNamed(m, "bn").Epsilon = 0 },
			[]string{`op "bn": epsilon: expected a value in (0, 1], got 0`}},
		{"epsilon negative", func(m *ir.Model) { opNamed(m, "bn").Epsilon = -1e-3 },
			[]string{`op "bn": epsilon: expected a value in (0, 1], got -0.001`}},
		{"epsilon large", func(m *ir.Model) { opNamed(m, "bn").Epsilon = 2 },
			[]string{`op "bn": epsilon: expected a value in (0, 1], got 2`}},
		{"epsilon NaN", func(m *ir.Model) { opNamed(m, "bn").Epsilon = math.NaN() },
			[]string{`op "bn": epsilon: expected a value in (0, 1], got NaN`}},

		// fields that do not belong to the op type
		{"kernel on batchnorm", func(m *ir.Model) { opNamed(m, "bn").Kernel = []int{3, 3} },
			[]string{`op "bn": kernel: field is not used by batchnorm ops`}},
		{"activation on batchnorm", func(m *ir.Model) { opNamed(m, "bn").Activation = ir.ActReLU },
			[]string{`op "bn": activation: field is not used by batchnorm ops`}},
		{"units on conv", func(m *ir.Model) { opNamed(m, "c1").Units = 3 },
			[]string{`op "c1": units: field is not used by conv2d ops`}},
		{"epsilon on conv", func(m *ir.Model) { opNamed(m, "c1").Epsilon = 1e-3 },
			[]string{`op "c1": epsilon: field is not used by conv2d ops`}},
		{"groups on dense", func(m *ir.Model) { opNamed(m, "fc").Groups = 1 },
			[]string{`op "fc": groups: field is not used by dense ops`}},
		{"bias on add", func(m *ir.Model) { opNamed(m, "add").Bias = true },
			[]string{`op "add": bias: field is not used by add ops`}},
		{"stride on pool", func(m *ir.Model) { opNamed(m, "pool").Stride = []int{2, 2} },
			[]string{`op "pool": stride: field is not used by global_avg_pool ops`}},
		{"activation on softmax", func(m *ir.Model) { opNamed(m, "sm").Activation = ir.ActReLU6 },
			[]string{`op "sm": activation: field is not used by softmax ops`}},
		{"out_channels on flatten", func(m *ir.Model) { opNamed(m, "flat").OutChannels = 2 },
			[]string{`op "flat": out_channels: field is not used by flatten ops`}},
		{"pads on activation", func(m *ir.Model) { opNamed(m, "act").Pads = []int{0, 0, 0, 0} },
			[]string{`op "act": pads: field is not used by activation ops`}},

		// activations
		{"bad activation name", func(m *ir.Model) { opNamed(m, "act").Activation = "gelu" },
			[]string{`op "act": activation: expected one of none, relu, relu6, got "gelu"`}},
		{"bad fused activation", func(m *ir.Model) { opNamed(m, "c1").Activation = "ReLU" },
			[]string{`op "c1": activation: expected one of none, relu, relu6, got "ReLU"`}},
		{"activation op without function", func(m *ir.Model) { opNamed(m, "act").Activation = "" },
			[]string{`op "act": activation: expected one of none, relu, relu6, got nothing`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := verifyNet(t)
			c.mutate(m)
			err := m.Verify()
			wantErr(t, err, c.want...)
			var ve *ir.Error
			if !errors.As(err, &ve) {
				t.Errorf("error %q is a %T, want *ir.Error", err, err)
			}
			// Stats and Blocks report the same problem.
			if _, serr := m.Stats(); serr == nil || serr.Error() != err.Error() {
				t.Errorf("Stats error %v, want %v", serr, err)
			}
		})
	}
}

// The unmutated net and the fields that are allowed verify.
func TestVerifyAccepts(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(m *ir.Model)
	}{
		{"as built", func(m *ir.Model) {}},
		{"none on batchnorm", func(m *ir.Model) { opNamed(m, "bn").Activation = ir.ActNone }},
		{"none on an activation op", func(m *ir.Model) { opNamed(m, "act").Activation = ir.ActNone }},
		{"fused activation on add", func(m *ir.Model) { opNamed(m, "add").Activation = ir.ActReLU6 }},
		{"fused activation on dense", func(m *ir.Model) { opNamed(m, "fc").Activation = ir.ActReLU }},
		{"conv residual input", func(m *ir.Model) { opNamed(m, "c2").Inputs = []string{"act", "input"} }},
		{"batchnorm on a vector", func(m *ir.Model) {
			op := opNamed(m, "bn")
			op.Inputs = []string{"flat"}
			opNamed(m, "fc").Inputs = []string{"bn"}
			opNamed(m, "act").Inputs = []string{"c1"}
			for _, r := range []string{"scale", "bias", "mean", "var"} {
				m.Params["bn."+r].Shape = []int{2}
				m.Params["bn."+r].Data = m.Params["bn."+r].Data[:2]
			}
			// bn now reads flat, defined later: move it after flat
			i := slices.IndexFunc(m.Ops, func(o ir.Op) bool { return o.Name == "bn" })
			bn := m.Ops[i]
			m.Ops = slices.Delete(m.Ops, i, i+1)
			j := slices.IndexFunc(m.Ops, func(o ir.Op) bool { return o.Name == "flat" })
			m.Ops = slices.Insert(m.Ops, j+1, bn)
		}},
		{"depthwise", func(m *ir.Model) {
			opNamed(m, "c1").Groups = 2
			m.Params["c1.weight"].Shape = []int{4, 1, 3, 3}
			m.Params["c1.weight"].Data = m.Params["c1.weight"].Data[:36]
		}},
		{"zero variance", func(m *ir.Model) { m.Params["bn.var"].Data[0] = 0 }},
		{"labels", func(m *ir.Model) { m.Input.Labels = []string{"a", "b", "c"} }},
		{"normalization", func(m *ir.Model) { m.Input.Mean = []float32{0.5, 0.4}; m.Input.Std = []float32{0.2, 0.3} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := verifyNet(t)
			c.mutate(m)
			if err := m.Verify(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestVerifyNil(t *testing.T) {
	var m *ir.Model
	wantErr(t, m.Verify(), "nil model")
}

// encodeNet returns the JSON document of verifyNet.
func encodeNet(t *testing.T) string {
	t.Helper()
	b, err := ir.Encode(verifyNet(t))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeErrors(t *testing.T) {
	doc := encodeNet(t)
	replace := func(old, new string) string {
		t.Helper()
		if !strings.Contains(doc, old) {
			t.Fatalf("document lacks %q", old)
		}
		return strings.Replace(doc, old, new, 1)
	}
	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"empty", "", []string{"empty document, expected a JSON object"}},
		{"not an object", "[1, 2]", []string{"expected a JSON object, got JSON array"}},
		{"truncated", doc[:len(doc)/2], []string{"JSON document is truncated", fmt.Sprintf("(byte %d)", len(doc)/2)}},
		{"truncated at end", doc[:len(doc)-3], []string{"JSON document is truncated"}},
		{"trailing data", doc + "{}", []string{"unexpected data after the JSON document", fmt.Sprintf("(byte %d)", len(doc))}},
		{"trailing bracket", doc + "]", []string{"unexpected data after the JSON document"}},
		{"syntax", replace(`"name": "c1"`, `"name": c1`), []string{"JSON syntax error at line", "invalid character 'c'"}},
		{"wrong format", replace(`"format": "pnas-ir"`, `"format": "onnx"`), []string{`format: expected "pnas-ir", got "onnx" (not a pnas model file)`}},
		{"no format", replace(`"format": "pnas-ir",`, ``), []string{`format: expected "pnas-ir", got ""`}},
		{"wrong version", replace(`"version": 1`, `"version": 7`), []string{"version: unsupported format version: expected 1, got 7"}},
		// a newer version is rejected for its version, not its new fields
		{"newer version with new fields", replace(`"version": 1`, `"version": 2, "graph": {}`), []string{"version: unsupported format version: expected 1, got 2"}},
		{"missing version", replace(`"version": 1,`, ``), []string{"version: missing format version"}},
		{"version type", replace(`"version": 1`, `"version": "1"`), []string{"version: expected an integer, got JSON string"}},
		{"unknown op field", replace(`"epsilon": 0.001`, `"epsilon": 0.001, "kernal": [3, 3]`), []string{`op "bn": kernal: unknown field (not part of format version 1)`}},
		{"unknown top-level field", replace(`"producer"`, `"author": "x", "producer"`), []string{`author: unknown field (not part of format version 1)`}},
		{"unknown input field", replace(`"layout"`, `"channels": 2, "layout"`), []string{`channels: unknown field`}},
		{"op field type", replace(`"epsilon": 0.001`, `"epsilon": "small"`), []string{`op "bn": epsilon: expected a number, got JSON string`}},
		{"op field type unnamed op", replace(`"name": "bn",`, `"name": 5,`), []string{`op "#1": name: expected a string, got JSON number`}},
		{"groups type", replace(`"groups": 1,`, `"groups": [1],`), []string{`op "c2": groups: expected an integer, got JSON array`}},
		{"bias type", replace(`"bias": true`, `"bias": 1`), []string{`op "c2": bias: expected true or false, got JSON number`}},
		{"input field type", replace(`"layout": "NCHW"`, `"layout": 4`), []string{`input.layout: expected a string, got JSON number`}},
		{"ops not an array", replace(`"ops": [`, `"ops": {"x": [`) + "}", []string{`ops: expected an array, got JSON object`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ir.Decode([]byte(c.doc))
			if err == nil {
				err = m.Verify() // some documents decode and are invalid
			}
			wantErr(t, err, c.want...)
		})
	}
}

// stFile builds a safetensors file from a header and a data section.
func stFile(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestDecodeSafetensorsErrors(t *testing.T) {
	var good bytes.Buffer
	if err := ir.EncodeSafetensors(&good, verifyNet(t).Params, map[string]string{"format": "pnas-ir"}); err != nil {
		t.Fatal(err)
	}
	g := good.Bytes()
	eight := make([]byte, 8)
	cases := []struct {
		name string
		file []byte
		want []string
	}{
		{"empty", nil, []string{"safetensors: file is 0 bytes, expected at least 8 (header length)"}},
		{"short", g[:5], []string{"safetensors: file is 5 bytes, expected at least 8"}},
		{"header truncated", g[:20], []string{"safetensors: header length", "exceeds the 12 bytes that follow (truncated file?)"}},
		{"data truncated", g[:len(g)-3], []string{`safetensors: tensor "fc.weight": data_offsets`, "outside the", "data bytes (truncated file?)"}},
		{"huge header length", stFile("", nil)[:8:8], []string{"safetensors: header length 1099511627776 at offset 0 exceeds the 0 bytes that follow"}},
		{"header not JSON", stFile("{nope", nil), []string{"safetensors: header at offset 8:", "invalid character"}},
		{"bad dtype", stFile(`{"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}`, eight),
			[]string{`safetensors: tensor "a": dtype "I32" not supported (expected F32, F16, BF16 or F64)`}},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight),
			[]string{`safetensors: tensors "a" and "b" overlap in the data section`}},
		{"size mismatch", stFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, eight),
			[]string{`safetensors: tensor "a": shape [3] of F32 needs 12 bytes, data_offsets give 8`}},
		{"offsets outside", stFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, eight),
			[]string{`safetensors: tensor "a": data_offsets [0,16] outside the 8 data bytes`}},
		{"offsets reversed", stFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, eight),
			[]string{`safetensors: tensor "a": data_offsets [8,0] outside the 8 data bytes`}},
		{"negative dimension", stFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, eight),
			[]string{`safetensors: tensor "a": bad dimension -1 in shape [-1]`}},
		{"huge shape", stFile(`{"a":{"dtype":"F32","shape":[65536,65536,65536],"data_offsets":[0,4]}}`, eight),
			[]string{`safetensors: tensor "a": shape [65536 65536 65536] is too large`}},
		{"unknown entry field", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, eight),
			[]string{`safetensors: tensor "a":`, `unknown field "x"`}},
		{"bad metadata", stFile(`{"__metadata__":{"v":1}}`, nil),
			[]string{"safetensors: __metadata__: expected a string map"}},
	}
	binary.LittleEndian.PutUint64(cases[4].file, 1<<40)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ir.DecodeSafetensors(c.file)
			wantErr(t, err, c.want...)
		})
	}
}

// Non-F32 dtypes are converted; a NaN in the file reaches Verify.
func TestSafetensorsDtypesAndNaN(t *testing.T) {
	data := []byte{}
	data = binary.LittleEndian.AppendUint16(data, 0x3c00) // F16 1.0
	data = binary.LittleEndian.AppendUint16(data, 0xc000) // F16 -2.0
	data = binary.LittleEndian.AppendUint16(data, 0x3f80) // BF16 1.0
	data = binary.LittleEndian.AppendUint16(data, 0x7fc0) // BF16 NaN
	data = binary.LittleEndian.AppendUint64(data, math.Float64bits(0.25))
	f := stFile(`{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}`, data)
	ts, _, err := ir.DecodeSafetensors(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := ts["h"].Data; got[0] != 1 || got[1] != -2 {
		t.Errorf("F16 = %v, want [1 -2]", got)
	}
	if got := ts["b"].Data; got[0] != 1 || !math.IsNaN(float64(got[1])) {
		t.Errorf("BF16 = %v, want [1 NaN]", got)
	}
	if got := ts["d"].Data; got[0] != 0.25 {
		t.Errorf("F64 = %v, want [0.25]", got)
	}

	// A weights file holding a NaN decodes; Verify names the weight.
	m := verifyNet(t)
	m.Params["c2.weight"].Data[3] = float32(math.NaN())
	var buf bytes.Buffer
	if err := ir.EncodeSafetensors(&buf, m.Params, nil); err != nil {
		t.Fatal(err)
	}
	params, _, err := ir.DecodeSafetensors(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m.Params = params
	wantErr(t, m.Verify(), `op "c2": weights: weight "c2.weight": value 3 is NaN, expected a finite number`)
}

func TestEncodeSafetensorsErrors(t *testing.T) {
	var buf bytes.Buffer
	wantErr(t, ir.EncodeSafetensors(&buf, map[string]*ir.Tensor{"__metadata__": ir.NewTensor(1)}, nil), `tensor name "__metadata__" is reserved`)
	wantErr(t, ir.EncodeSafetensors(&buf, map[string]*ir.Tensor{"a": {Shape: []int{2, 2}, Data: make([]float32, 3)}}, nil), `tensor "a": shape [2 2] needs 4 values, has 3`)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveAtomicReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "net.json")
	big := testnet.Tiny(t)
	if err := ir.Save(big, path); err != nil {
		t.Fatal(err)
	}
	bigInfo, err := os.Stat(filepath.Join(dir, "net.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	small := verifyNet(t)
	if err := ir.Save(small, path); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"net.json", "net.safetensors"}, dirNames(t, dir)); diff != "" {
		t.Errorf("directory after two saves (-want +got):\n%s", diff)
	}
	// Both files were replaced whole: they hold exactly the small model.
	small.Weights = "net.safetensors"
	wantDoc, _ := ir.Encode(small)
	gotDoc, _ := os.ReadFile(path)
	if !bytes.Equal(wantDoc, gotDoc) {
		t.Errorf("net.json is not exactly the second model's document")
	}
	var wantW bytes.Buffer
	ir.EncodeSafetensors(&wantW, small.Params, map[string]string{"format": ir.FormatName, "version": "1", "model": small.Name})
	gotW, _ := os.ReadFile(filepath.Join(dir, "net.safetensors"))
	if !bytes.Equal(wantW.Bytes(), gotW) {
		t.Errorf("net.safetensors is not exactly the second model's weights (%d bytes, first save had %d)", len(gotW), bigInfo.Size())
	}
	got, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(small, got); diff != "" {
		t.Errorf("Load after replace (-want +got):\n%s", diff)
	}

	// An invalid model is not written and leaves the files alone.
	bad := verifyNet(t)
	bad.Params["bn.var"].Data[0] = -1
	wantErr(t, ir.Save(bad, path), `op "bn": weights: weight "bn.var"`)
	if again, _ := os.ReadFile(path); !bytes.Equal(again, gotDoc) {
		t.Errorf("a failed Save changed %s", path)
	}
	if diff := cmp.Diff([]string{"net.json", "net.safetensors"}, dirNames(t, dir)); diff != "" {
		t.Errorf("directory after a failed save (-want +got):\n%s", diff)
	}

	// A directory that does not exist is named in the error.
	missing := filepath.Join(dir, "no", "such", "net.json")
	wantErr(t, ir.Save(small, missing), filepath.Join(dir, "no", "such"))
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "net.json")
	m := verifyNet(t)
	if err := ir.Save(m, path); err != nil {
		t.Fatal(err)
	}
	wpath := filepath.Join(dir, "net.safetensors")
	weights, _ := os.ReadFile(wpath)

	// missing weights file: the error names the path
	os.Remove(wpath)
	_, err := ir.Load(path)
	wantErr(t, err, path+": weights:", wpath, "no such file")

	// truncated weights: the error names the weights file
	os.WriteFile(wpath, weights[:len(weights)-4], 0o644)
	_, err = ir.Load(path)
	wantErr(t, err, wpath+": safetensors: tensor", "truncated file?")

	// weights of another model: Verify's error is prefixed by the JSON path
	var other bytes.Buffer
	ir.EncodeSafetensors(&other, testnet.Tiny(t).Params, nil)
	os.WriteFile(wpath, other.Bytes(), 0o644)
	_, err = ir.Load(path)
	wantErr(t, err, path+`: op "c1": weights: missing weight "c1.weight"`)

	// a broken document names the JSON path
	os.WriteFile(wpath, weights, 0o644)
	doc, _ := os.ReadFile(path)
	os.WriteFile(path, doc[:100], 0o644)
	_, err = ir.Load(path)
	wantErr(t, err, path+": JSON document is truncated")

	// a missing document
	_, err = ir.Load(filepath.Join(dir, "nope.json"))
	wantErr(t, err, filepath.Join(dir, "nope.json"))

	// a weights field pointing elsewhere is followed, relative to the JSON file
	os.Mkdir(filepath.Join(dir, "w"), 0o755)
	os.Rename(wpath, filepath.Join(dir, "w", "x.safetensors"))
	doc2 := strings.Replace(string(doc), `"weights": "net.safetensors"`, `"weights": "w/x.safetensors"`, 1)
	os.WriteFile(path, []byte(doc2), 0o644)
	if _, err := ir.Load(path); err != nil {
		t.Errorf("Load with weights in a subdirectory: %v", err)
	}
}

func TestWeightsPath(t *testing.T) {
	m := &ir.Model{}
	if got, want := m.WeightsPath("/a/b/net.json"), "/a/b/net.safetensors"; got != want {
		t.Errorf("default WeightsPath = %q, want %q", got, want)
	}
	m.Weights = "w/x.safetensors"
	if got, want := m.WeightsPath("/a/b/net.json"), "/a/b/w/x.safetensors"; got != want {
		t.Errorf("relative WeightsPath = %q, want %q", got, want)
	}
	m.Weights = "/abs/x.safetensors"
	if got, want := m.WeightsPath("/a/b/net.json"), "/abs/x.safetensors"; got != want {
		t.Errorf("absolute WeightsPath = %q, want %q", got, want)
	}
}

// Peak activation memory, computed by hand. Sizes are float32 bytes.
func TestPeakActivationChain(t *testing.T) {
	// input [1,4,4] 64 B -> c1 3x3 [4,4,4] 256 B -> c2 3x3 [2,4,4] 128 B
	// -> act 128 B -> pool [2,1,1] 8 B -> flat [2] 8 B -> fc [3] 12 B
	b := ir.NewBuilder("chain", 1, 4, 4, nil)
	x := b.Conv("c1", b.Input(), 4, 3, 1, 1)
	x = b.Conv("c2", x, 2, 3, 1, 1)
	x = b.Act("act", x, ir.ActReLU)
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	x = b.Dense("fc", x, 3, nil, nil)
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// live during each op: c1 64+256=320, c2 256+128=384, act 128+128=256,
	// pool 128+8, flat 8+8, fc 8+12
	if st.PeakActivationBytes != 384 || st.PeakOp != "c2" {
		t.Errorf("peak = %d B during %q, want 384 B during \"c2\"", st.PeakActivationBytes, st.PeakOp)
	}
	// MACs: c1 4*4*4*1*9, c2 2*4*4*4*9, fc 3*2
	if want := int64(576 + 1152 + 6); st.MACs != want {
		t.Errorf("MACs = %d, want %d", st.MACs, want)
	}
	// params: c1 36, c2 72, fc 6+3
	if want := 36 + 72 + 9; st.Params != want {
		t.Errorf("Params = %d, want %d", st.Params, want)
	}
}

func TestPeakActivationResidual(t *testing.T) {
	// input [2,4,4] 128 B -> expand 1x1 [6,4,4] 384 B -> act 384 B
	// -> project 1x1 [2,4,4] 128 B -> add(project, input) 128 B -> pool, flat, fc
	build := func(skip, fused bool) *ir.Model {
		b := ir.NewBuilder("res", 2, 4, 4, nil)
		x := b.Conv("expand", b.Input(), 6, 1, 1, 1)
		x = b.Act("act", x, ir.ActReLU6)
		x = b.Conv("project", x, 2, 1, 1, 1)
		switch {
		case skip && fused:
			op := &b.Raw().Ops[len(b.Raw().Ops)-1]
			op.Inputs = append(op.Inputs, b.Input())
		case skip:
			x = b.Add("add", x, b.Input())
		}
		x = b.GlobalPool("pool", x)
		x = b.Flatten("flat", x)
		x = b.Dense("fc", x, 3, nil, nil)
		m, err := b.Model(x)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, c := range []struct {
		name        string
		skip, fused bool
		peak        int64
		op          string
	}{
		// The skip keeps the input (128 B) live to the add:
		// expand 128+384=512, act 128+384+384=896, project 128+384+128=640, add 128+128+128.
		{"add", true, false, 896, "act"},
		// The residual read by the projection conv: same liveness up to project.
		{"conv residual", true, true, 896, "act"},
		// Without the skip the input dies after expand:
		// expand 128+384=512, act 384+384=768, project 384+128=512.
		{"no skip", false, false, 768, "act"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := build(c.skip, c.fused).Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.PeakActivationBytes != c.peak || st.PeakOp != c.op {
				t.Errorf("peak = %d B during %q, want %d B during %q", st.PeakActivationBytes, st.PeakOp, c.peak, c.op)
			}
		})
	}
}

func TestLastUse(t *testing.T) {
	m := verifyNet(t)
	got := ir.LastUse(m)
	// ops: c1 0, bn 1, act 2, c2 3, add 4, pool 5, flat 6, fc 7, sm 8; the
	// input is read by c1 and add; sm is the output, read "after" the last op
	want := map[string]int{"input": 4, "c1": 1, "bn": 2, "act": 3, "c2": 4, "add": 5, "pool": 6, "flat": 7, "fc": 8, "sm": 9}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LastUse (-want +got):\n%s", diff)
	}
}
