package ir

import (
	"fmt"
	"sort"
)

// FormatName is the value of the "format" field of every pnas model file.
const FormatName = "pnas-ir"

// FormatVersion is the schema version this package reads and writes.
const FormatVersion = 1

// OpType names a primitive op.
type OpType string

// The primitive ops.
const (
	OpConv2D     OpType = "conv2d"          // 2-D convolution; depthwise is groups = channels
	OpBatchNorm  OpType = "batchnorm"       // inference-mode batch normalization
	OpActivation OpType = "activation"      // element-wise ReLU / ReLU6 / identity
	OpAdd        OpType = "add"             // element-wise sum of two tensors (residual)
	OpGlobalPool OpType = "global_avg_pool" // [C,H,W] -> [C,1,1]
	OpFlatten    OpType = "flatten"         // [C,H,W] -> [C*H*W]
	OpDense      OpType = "dense"           // [F] -> [Units], weight [Units,F]
	OpSoftmax    OpType = "softmax"         // over a vector
)

// OpTypes lists every op type in documentation order.
var OpTypes = []OpType{OpConv2D, OpBatchNorm, OpActivation, OpAdd, OpGlobalPool, OpFlatten, OpDense, OpSoftmax}

// Activation is an element-wise non-linearity: a standalone op's function or
// the fused epilogue of conv2d, dense and add.
type Activation string

// The activations.
const (
	ActNone  Activation = "none"
	ActReLU  Activation = "relu"
	ActReLU6 Activation = "relu6"
)

// Apply applies the activation to one value.
func (a Activation) Apply(v float64) float64 {
	switch a {
	case ActReLU:
		if v < 0 {
			return 0
		}
	case ActReLU6:
		if v < 0 {
			return 0
		}
		if v > 6 {
			return 6
		}
	}
	return v
}

func (a Activation) valid() bool { return a == "" || a == ActNone || a == ActReLU || a == ActReLU6 }

// Model is a whole network: its input specification, the ops in execution
// order and the weights.
type Model struct {
	Format   string   `json:"format"`            // always FormatName
	Version  int      `json:"version"`           // schema version, FormatVersion
	Name     string   `json:"name"`              // model name
	Producer string   `json:"producer"`          // tool and version that wrote the file
	Input    Input    `json:"input"`             // the network input
	Output   string   `json:"output"`            // name of the output tensor (a vector of class scores)
	Weights  string   `json:"weights,omitempty"` // safetensors file, relative to the JSON file; default NAME.safetensors
	Ops      []Op     `json:"ops"`               // ops in execution order
	Metadata Metadata `json:"metadata"`          // provenance and measurements

	// Params holds the weights keyed "<op name>.<role>". It is stored in the
	// safetensors file, not in the JSON document.
	Params map[string]*Tensor `json:"-"`
}

// Input specifies the network input of one sample.
type Input struct {
	Name   string    `json:"name"`             // tensor name the first ops read
	Shape  []int     `json:"shape"`            // per-sample shape [C,H,W]
	Layout string    `json:"layout"`           // always "NCHW": batch, channels, rows, columns
	Mean   []float32 `json:"mean,omitempty"`   // per-channel mean, subtracted after scaling pixels to [0,1]
	Std    []float32 `json:"std,omitempty"`    // per-channel standard deviation, divided after the mean
	Labels []string  `json:"labels,omitempty"` // class names, one per output element
}

// Op is one primitive operation. Which attribute fields apply depends on
// Type; Verify rejects fields that do not belong to the op's type.
type Op struct {
	Name   string   `json:"name"`   // unique op name; weights are "<name>.<role>"
	Type   OpType   `json:"type"`   // the op
	Inputs []string `json:"inputs"` // input tensor names
	Output string   `json:"output"` // output tensor name, unique in the model

	OutChannels int     `json:"out_channels,omitempty"` // conv2d: output channels
	Kernel      []int   `json:"kernel,omitempty"`       // conv2d: [kh, kw]
	Stride      []int   `json:"stride,omitempty"`       // conv2d: [sh, sw]
	Pads        []int   `json:"pads,omitempty"`         // conv2d: [top, left, bottom, right]
	Groups      int     `json:"groups,omitempty"`       // conv2d: channel groups (1 dense, C depthwise)
	Bias        bool    `json:"bias,omitempty"`         // conv2d, dense: a "bias" weight is present
	Units       int     `json:"units,omitempty"`        // dense: output features
	Epsilon     float64 `json:"epsilon,omitempty"`      // batchnorm: variance epsilon

	// Activation is the function of an activation op, or the fused
	// epilogue of conv2d, dense and add (empty means none).
	Activation Activation `json:"activation,omitempty"`

	// Block annotates which block of a search space the op belongs to.
	Block *Block `json:"block,omitempty"`
}

// Block annotates an op with the block of a search space it implements, so
// that latency-table keys and pictures can be derived from a model. Package
// ir carries the annotation and checks nothing about its meaning; the
// vocabulary of the candidate names and the keys derived from them belong
// to the search space (see package internal/archnet).
type Block struct {
	Stage     int    `json:"stage"`     // 0 for the stem and fixed first block; 1.. for searchable stages; -1 for the head
	Layer     int    `json:"layer"`     // layer index within the stage
	Candidate string `json:"candidate"` // what the block is, e.g. "stem", "mbconv k5 e6", "head", "classifier"
}

// Metadata is provenance and measurements attached to a model.
type Metadata struct {
	Description  string            `json:"description,omitempty"`
	LatencyTable string            `json:"latency_table,omitempty"` // identity of the latency model the model was searched against
	Search       *SearchInfo       `json:"search,omitempty"`
	Accuracy     []Accuracy        `json:"accuracy,omitempty"`
	Extra        map[string]string `json:"extra,omitempty"`
}

// SearchInfo records how a searched model was found.
type SearchInfo struct {
	Space             string      `json:"space"`
	Target            string      `json:"target"`
	LatencyTable      string      `json:"latency_table"`
	Seed              int64       `json:"seed"`
	GateMode          string      `json:"gate_mode,omitempty"`
	Candidates        []string    `json:"candidates,omitempty"`
	Choices           []string    `json:"choices,omitempty"` // chosen candidate per searchable layer, "zero" included
	Alpha             [][]float64 `json:"alpha,omitempty"`   // final architecture parameters per layer
	ExpectedLatencyUS float64     `json:"expected_latency_us,omitempty"`
	Steps             int         `json:"steps,omitempty"`
}

// Accuracy is one measured accuracy of the model.
type Accuracy struct {
	Data  string  `json:"data"`  // data set spec
	Split string  `json:"split"` // "test", "heldout", ...
	N     int     `json:"n"`     // images evaluated
	Top1  float64 `json:"top1"`  // fraction correct
}

// Tensor is a dense float32 array in row-major order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor allocates a zero tensor of the given shape.
func NewTensor(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, numel(shape))}
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Param returns the weight "<op>.<role>" or nil.
func (m *Model) Param(op, role string) *Tensor {
	if m.Params == nil {
		return nil
	}
	return m.Params[op+"."+role]
}

// SetParam stores a weight under "<op>.<role>".
func (m *Model) SetParam(op, role string, t *Tensor) {
	if m.Params == nil {
		m.Params = map[string]*Tensor{}
	}
	m.Params[op+"."+role] = t
}

// ParamNames returns the weight keys in sorted order.
func (m *Model) ParamNames() []string {
	names := make([]string, 0, len(m.Params))
	for k := range m.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Clone returns a deep copy of the model, weights included.
func (m *Model) Clone() *Model {
	c := *m
	c.Input.Shape = cloneSlice(m.Input.Shape)
	c.Input.Mean = cloneSlice(m.Input.Mean)
	c.Input.Std = cloneSlice(m.Input.Std)
	c.Input.Labels = cloneSlice(m.Input.Labels)
	c.Ops = make([]Op, len(m.Ops))
	for i, op := range m.Ops {
		c.Ops[i] = op.Clone()
	}
	c.Metadata = m.Metadata.clone()
	if m.Params != nil {
		c.Params = make(map[string]*Tensor, len(m.Params))
		for k, v := range m.Params {
			c.Params[k] = v.Clone()
		}
	}
	return &c
}

// Clone returns a deep copy of the op.
func (o Op) Clone() Op {
	c := o
	c.Inputs = cloneSlice(o.Inputs)
	c.Kernel = cloneSlice(o.Kernel)
	c.Stride = cloneSlice(o.Stride)
	c.Pads = cloneSlice(o.Pads)
	if o.Block != nil {
		b := *o.Block
		c.Block = &b
	}
	return c
}

func (md Metadata) clone() Metadata {
	c := md
	c.Accuracy = cloneSlice(md.Accuracy)
	if md.Extra != nil {
		c.Extra = make(map[string]string, len(md.Extra))
		for k, v := range md.Extra {
			c.Extra[k] = v
		}
	}
	if md.Search != nil {
		s := *md.Search
		s.Candidates = cloneSlice(s.Candidates)
		s.Choices = cloneSlice(s.Choices)
		if md.Search.Alpha != nil {
			s.Alpha = make([][]float64, len(md.Search.Alpha))
			for i, a := range md.Search.Alpha {
				s.Alpha[i] = cloneSlice(a)
			}
		}
		c.Search = &s
	}
	return c
}

// cloneSlice copies s, keeping nil as nil and empty as empty.
func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// FusedActivation returns the op's activation with "" read as none.
func (o *Op) FusedActivation() Activation {
	if o.Activation == "" {
		return ActNone
	}
	return o.Activation
}

// String gives a short human description of an op.
func (o *Op) String() string {
	return fmt.Sprintf("%s %q", o.Type, o.Name)
}

// Preprocess converts n images of uint8 pixels in CHW order into the
// network input: pixels are scaled to [0,1], then each channel has Mean
// subtracted and is divided by Std (when given). dst is grown if short.
func (in *Input) Preprocess(pixels []uint8, n int, dst []float32) ([]float32, error) {
	if len(in.Shape) != 3 || numel(in.Shape) <= 0 {
		return nil, fmt.Errorf("input: expected a [C,H,W] shape, got %v", in.Shape)
	}
	per := numel(in.Shape)
	if len(pixels) != n*per {
		return nil, fmt.Errorf("input: expected %d pixels (%d images of %v), got %d", n*per, n, in.Shape, len(pixels))
	}
	if cap(dst) < n*per {
		dst = make([]float32, n*per)
	}
	dst = dst[:n*per]
	hw := per / in.Shape[0]
	for i, p := range pixels {
		c := (i / hw) % in.Shape[0]
		v := float32(p) / 255
		if len(in.Mean) > 0 {
			v -= in.Mean[c]
		}
		if len(in.Std) > 0 {
			v /= in.Std[c]
		}
		dst[i] = v
	}
	return dst, nil
}
