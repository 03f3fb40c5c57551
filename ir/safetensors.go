package ir

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
)

// The safetensors format: an 8-byte little-endian header length N, N bytes of
// JSON mapping tensor names to {"dtype","shape","data_offsets":[begin,end]}
// (offsets relative to the end of the header), then the raw little-endian
// data. pnas writes only F32 tensors, sorted by name, packed in order, and a
// "__metadata__" entry with the format name and version.

const maxHeader = 100 << 20

type stEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// EncodeSafetensors writes the tensors in safetensors format.
func EncodeSafetensors(w io.Writer, tensors map[string]*Tensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		if k == "__metadata__" {
			return fmt.Errorf("safetensors: tensor name %q is reserved", k)
		}
		names = append(names, k)
	}
	sort.Strings(names)
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off int64
	for _, k := range names {
		t := tensors[k]
		if len(t.Data) != numel(t.Shape) {
			return fmt.Errorf("safetensors: tensor %q: shape %v needs %d values, has %d", k, t.Shape, numel(t.Shape), len(t.Data))
		}
		n := int64(len(t.Data)) * 4
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[k] = stEntry{DType: "F32", Shape: shape, Offsets: [2]int64{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(header) // map keys are sorted: deterministic
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 { // align the data section to 8 bytes
		hb = append(hb, ' ')
	}
	var lenbuf [8]byte
	binary.LittleEndian.PutUint64(lenbuf[:], uint64(len(hb)))
	bw := &errWriter{w: w}
	bw.write(lenbuf[:])
	bw.write(hb)
	buf := make([]byte, 0, 1<<16)
	for _, k := range names {
		for _, v := range tensors[k].Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) >= 1<<16-4 {
				bw.write(buf)
				buf = buf[:0]
			}
		}
	}
	bw.write(buf)
	return bw.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

// DecodeSafetensors parses a safetensors file held in memory. Errors name the
// tensor and the byte offset. F32 tensors are read as is; F16, BF16 and F64
// tensors are converted to float32.
func DecodeSafetensors(b []byte) (map[string]*Tensor, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("safetensors: file is %d bytes, expected at least 8 (header length)", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("safetensors: header length %d at offset 0 exceeds the %d bytes that follow (truncated file?)", n, len(b)-8)
	}
	hb := b[8 : 8+n]
	data := b[8+n:]
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hb))
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header at offset 8: %v", err)
	}
	meta := map[string]string{}
	out := map[string]*Tensor{}
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("safetensors: __metadata__: expected a string map: %v", err)
			}
			continue
		}
		var e stEntry
		d := json.NewDecoder(bytes.NewReader(msg))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %v", name, err)
		}
		size := int64(0)
		switch e.DType {
		case "F32":
			size = 4
		case "F16", "BF16":
			size = 2
		case "F64":
			size = 8
		default:
			return nil, nil, fmt.Errorf("safetensors: tensor %q: dtype %q not supported (expected F32, F16, BF16 or F64)", name, e.DType)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 || d > 1<<31 {
				return nil, nil, fmt.Errorf("safetensors: tensor %q: bad dimension %d in shape %v", name, d, e.Shape)
			}
			count *= int64(d)
			if count > 1<<31 {
				return nil, nil, fmt.Errorf("safetensors: tensor %q: shape %v is too large", name, e.Shape)
			}
		}
		begin, end := e.Offsets[0], e.Offsets[1]
		if begin < 0 || end < begin || end > int64(len(data)) {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data_offsets [%d,%d] outside the %d data bytes (truncated file?)", name, begin, end, len(data))
		}
		if end-begin != count*size {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: shape %v of %s needs %d bytes, data_offsets give %d", name, e.Shape, e.DType, count*size, end-begin)
		}
		t := &Tensor{Shape: append([]int{}, e.Shape...), Data: make([]float32, count)}
		p := data[begin:end]
		for i := range t.Data {
			switch e.DType {
			case "F32":
				t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
			case "F64":
				t.Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:])))
			case "BF16":
				t.Data[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(p[2*i:])) << 16)
			case "F16":
				t.Data[i] = halfToFloat(binary.LittleEndian.Uint16(p[2*i:]))
			}
		}
		out[name] = t
		spans = append(spans, span{name, begin, end})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, nil, fmt.Errorf("safetensors: tensors %q and %q overlap in the data section", spans[i-1].name, spans[i].name)
		}
	}
	return out, meta, nil
}

func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(frac) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	case exp == 31:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}
