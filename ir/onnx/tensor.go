package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
)

// maxElements bounds the element count of one tensor (1 Gi values), so a
// corrupt dims field cannot make the reader allocate without limit.
const maxElements = 1 << 30

// NumElements returns the element count of the tensor's dims, or an error
// for negative dimensions or an absurd count.
func (t *TensorProto) NumElements() (int, error) {
	n := 1
	for i, d := range t.Dims {
		if d < 0 {
			return 0, fmt.Errorf("dims[%d] is %d, expected a size >= 0", i, d)
		}
		if d > maxElements || n*int(d) > maxElements {
			return 0, fmt.Errorf("dims %v hold more than %d elements", t.Dims, maxElements)
		}
		n *= int(d)
	}
	return n, nil
}

func (t *TensorProto) checkStorage() error {
	if t.DataLocation == 1 {
		return fmt.Errorf("data is stored in an external file, which is not supported (save the model with its weights inside)")
	}
	if t.HasSegment {
		return fmt.Errorf("segmented (chunked) tensors are not supported")
	}
	return nil
}

// Floats returns the values of a FLOAT tensor from float_data or raw_data,
// checking the count against dims.
func (t *TensorProto) Floats() ([]float32, error) {
	if err := t.checkStorage(); err != nil {
		return nil, err
	}
	if t.DataType != DataFloat {
		return nil, fmt.Errorf("data type %s (%d) is not supported here (expected FLOAT)", t.DataType, int32(t.DataType))
	}
	n, err := t.NumElements()
	if err != nil {
		return nil, err
	}
	if t.RawData != nil {
		if len(t.RawData) != 4*n {
			return nil, fmt.Errorf("raw_data has %d bytes, dims %v need %d", len(t.RawData), t.Dims, 4*n)
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
		}
		return out, nil
	}
	if len(t.FloatData) != n {
		return nil, fmt.Errorf("float_data has %d values, dims %v need %d", len(t.FloatData), t.Dims, n)
	}
	return append([]float32(nil), t.FloatData...), nil
}

// Int64s returns the values of an INT64 tensor from int64_data or raw_data,
// checking the count against dims.
func (t *TensorProto) Int64s() ([]int64, error) {
	if err := t.checkStorage(); err != nil {
		return nil, err
	}
	if t.DataType != DataInt64 {
		return nil, fmt.Errorf("data type %s (%d) is not supported here (expected INT64)", t.DataType, int32(t.DataType))
	}
	n, err := t.NumElements()
	if err != nil {
		return nil, err
	}
	if t.RawData != nil {
		if len(t.RawData) != 8*n {
			return nil, fmt.Errorf("raw_data has %d bytes, dims %v need %d", len(t.RawData), t.Dims, 8*n)
		}
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.RawData[8*i:]))
		}
		return out, nil
	}
	if len(t.Int64Data) != n {
		return nil, fmt.Errorf("int64_data has %d values, dims %v need %d", len(t.Int64Data), t.Dims, n)
	}
	return append([]int64(nil), t.Int64Data...), nil
}

// floatTensor builds a FLOAT tensor stored as raw_data.
func floatTensor(name string, dims []int, data []float32) TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	d := make([]int64, len(dims))
	for i, x := range dims {
		d[i] = int64(x)
	}
	return TensorProto{Name: name, Dims: d, DataType: DataFloat, RawData: raw}
}
