package space

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// Space is a search space. Its JSON form uses the field names in the tags;
// see docs/search.md for an example.
type Space struct {
	Name       string   `json:"name"`       // identifier, e.g. "fmnist"
	Input      Input    `json:"input"`      // one sample
	Classes    int      `json:"classes"`    // outputs of the classifier
	Stem       Conv     `json:"stem"`       // conv + BN + ReLU6
	First      Block    `json:"first"`      // fixed inverted-residual block, no residual
	Stages     []Stage  `json:"stages"`     // searchable stages
	Head       Head     `json:"head"`       // 1x1 conv + BN + ReLU6 before pooling
	Candidates []string `json:"candidates"` // candidate names, e.g. "k3e6", "zero"
}

// Input is the per-sample input size.
type Input struct {
	Height   int `json:"height"`
	Width    int `json:"width"`
	Channels int `json:"channels"`
}

// Conv is the stem convolution.
type Conv struct {
	Channels int `json:"channels"`
	Kernel   int `json:"kernel"`
	Stride   int `json:"stride"`
}

// Block is the fixed first inverted-residual block.
type Block struct {
	Channels int `json:"channels"`
	Kernel   int `json:"kernel"`
	Expand   int `json:"expand"`
	Stride   int `json:"stride"`
}

// Stage is a run of searchable layers of equal width; only the first layer
// uses Stride.
type Stage struct {
	Channels int `json:"channels"`
	Stride   int `json:"stride"`
	Layers   int `json:"layers"`
}

// Head is the 1x1 feature-mix convolution.
type Head struct {
	Channels int `json:"channels"`
}

// Limits checked by Validate.
const (
	MaxSize     = 4096  // input height and width
	MaxChannels = 8192  // any width
	MaxStride   = 4     // any stride
	MaxLayers   = 64    // searchable layers per stage
	MaxClasses  = 65536 // classifier outputs
)

// FMNIST returns the default space: 28x28x1 input; stem 3x3 stride 1 to 16;
// a fixed k3e1 block 16->16; stages (24,2,3), (40,2,3), (80,1,3), (96,2,3),
// i.e. 12 searchable layers; head 1x1 to 256; 10 classes; all default
// candidates.
func FMNIST() *Space {
	return &Space{
		Name:    "fmnist",
		Input:   Input{Height: 28, Width: 28, Channels: 1},
		Classes: 10,
		Stem:    Conv{Channels: 16, Kernel: 3, Stride: 1},
		First:   Block{Channels: 16, Kernel: 3, Expand: 1, Stride: 1},
		Stages: []Stage{
			{Channels: 24, Stride: 2, Layers: 3},
			{Channels: 40, Stride: 2, Layers: 3},
			{Channels: 80, Stride: 1, Layers: 3},
			{Channels: 96, Stride: 2, Layers: 3},
		},
		Head:       Head{Channels: 256},
		Candidates: append([]string(nil), DefaultCandidates...),
	}
}

// ImageNetMobile returns the ProxylessNAS ImageNet mobile space: 224x224x3
// input; stem 3x3 stride 2 to 32; a fixed k3e1 block to 16; stages (24,2,4),
// (40,2,4), (80,2,4), (96,1,4), (192,2,4), (320,1,1), i.e. 21 searchable
// layers; head 1x1 to 1280; 1000 classes; all default candidates.
func ImageNetMobile() *Space {
	return &Space{
		Name:    "imagenet-mobile",
		Input:   Input{Height: 224, Width: 224, Channels: 3},
		Classes: 1000,
		Stem:    Conv{Channels: 32, Kernel: 3, Stride: 2},
		First:   Block{Channels: 16, Kernel: 3, Expand: 1, Stride: 1},
		Stages: []Stage{
			{Channels: 24, Stride: 2, Layers: 4},
			{Channels: 40, Stride: 2, Layers: 4},
			{Channels: 80, Stride: 2, Layers: 4},
			{Channels: 96, Stride: 1, Layers: 4},
			{Channels: 192, Stride: 2, Layers: 4},
			{Channels: 320, Stride: 1, Layers: 1},
		},
		Head:       Head{Channels: 1280},
		Candidates: append([]string(nil), DefaultCandidates...),
	}
}

// DefaultName is the name of the default built-in space.
const DefaultName = "fmnist"

var builtins = map[string]func() *Space{
	"fmnist":          FMNIST,
	"imagenet-mobile": ImageNetMobile,
}

// Names returns the names of the built-in spaces, sorted.
func Names() []string {
	out := make([]string, 0, len(builtins))
	for n := range builtins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Builtin returns a fresh copy of the built-in space called name.
func Builtin(name string) (*Space, error) {
	f, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("search space %q: expected one of %s or a .json file", name, strings.Join(Names(), ", "))
	}
	return f(), nil
}

// Open returns the built-in space called spec, or reads spec as a JSON file
// when it is not a built-in name.
func Open(spec string) (*Space, error) {
	if _, ok := builtins[spec]; ok {
		return Builtin(spec)
	}
	if !strings.HasSuffix(spec, ".json") {
		if _, err := os.Stat(spec); err != nil {
			return Builtin(spec) // reports the valid names
		}
	}
	return Load(spec)
}

// Load reads and validates a JSON space file.
func Load(path string) (*Space, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes and validates a JSON space. Unknown fields are rejected.
func Parse(b []byte) (*Space, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Space
	if err := dec.Decode(&s); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("search space: field %s: expected %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return nil, fmt.Errorf("search space: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("search space: unexpected data after the JSON object")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// JSON returns the indented JSON form of s.
func (s *Space) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Clone returns a deep copy.
func (s *Space) Clone() *Space {
	c := *s
	c.Stages = append([]Stage(nil), s.Stages...)
	c.Candidates = append([]string(nil), s.Candidates...)
	return &c
}

func rangeErr(field string, lo, hi, got int) error {
	return fmt.Errorf("search space: %s: expected %d..%d, got %d", field, lo, hi, got)
}

func checkKernel(field string, k int) error {
	if k < 1 || k > MaxKernel || k%2 == 0 {
		return fmt.Errorf("search space: %s: expected an odd kernel in 1..%d, got %d", field, MaxKernel, k)
	}
	return nil
}

// Validate checks every field and returns the first problem found, naming
// the field, what was expected and what was found.
func (s *Space) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("search space: name: expected a non-empty name, got \"\"")
	}
	checks := []struct {
		field     string
		v, lo, hi int
	}{
		{"input.height", s.Input.Height, 1, MaxSize},
		{"input.width", s.Input.Width, 1, MaxSize},
		{"input.channels", s.Input.Channels, 1, MaxChannels},
		{"classes", s.Classes, 2, MaxClasses},
		{"stem.channels", s.Stem.Channels, 1, MaxChannels},
		{"stem.stride", s.Stem.Stride, 1, MaxStride},
		{"first.channels", s.First.Channels, 1, MaxChannels},
		{"first.expand", s.First.Expand, 1, MaxExpand},
		{"first.stride", s.First.Stride, 1, MaxStride},
		{"head.channels", s.Head.Channels, 1, MaxChannels},
	}
	for _, c := range checks {
		if c.v < c.lo || c.v > c.hi {
			return rangeErr(c.field, c.lo, c.hi, c.v)
		}
	}
	if err := checkKernel("stem.kernel", s.Stem.Kernel); err != nil {
		return err
	}
	if err := checkKernel("first.kernel", s.First.Kernel); err != nil {
		return err
	}
	if len(s.Stages) == 0 {
		return fmt.Errorf("search space: stages: expected at least one stage, got none")
	}
	for i, st := range s.Stages {
		f := fmt.Sprintf("stages[%d]", i)
		if st.Channels < 1 || st.Channels > MaxChannels {
			return rangeErr(f+".channels", 1, MaxChannels, st.Channels)
		}
		if st.Stride < 1 || st.Stride > MaxStride {
			return rangeErr(f+".stride", 1, MaxStride, st.Stride)
		}
		if st.Layers < 1 || st.Layers > MaxLayers {
			return rangeErr(f+".layers", 1, MaxLayers, st.Layers)
		}
	}
	if len(s.Candidates) == 0 {
		return fmt.Errorf("search space: candidates: expected at least one candidate such as %q, got none", DefaultCandidates[0])
	}
	if _, err := parseNames(s.Candidates); err != nil {
		return fmt.Errorf("search space: %w", err)
	}
	return nil
}

// Shape is a feature-map size.
type Shape struct{ H, W, C int }

// String formats the shape as HxWxC, the latency-table convention.
func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.H, s.W, s.C) }

// ConvOut is the output size of a convolution with "same" padding k/2 on
// every side: floor((n + 2*(k/2) - k) / stride) + 1.
func ConvOut(n, k, stride int) int { return (n+2*(k/2)-k)/stride + 1 }

// MidChannels is the expanded width round(cin*expand) of an MBConv.
func MidChannels(cin, expand int) int { return int(math.Round(float64(cin) * float64(expand))) }

// FixedConv is the stem or head convolution of a plan.
type FixedConv struct {
	In, Out        Shape
	Kernel, Stride int
}

// FixedBlock is the fixed first block of a plan. It never has a residual.
type FixedBlock struct {
	In, Out                Shape
	Kernel, Expand, Stride int
}

// Layer is one searchable layer position.
type Layer struct {
	Index      int         // position among all searchable layers, from 0
	Stage      int         // stage number, from 1
	Pos        int         // position within the stage, from 0
	In, Out    Shape       // input and output sizes
	Stride     int         // stride of the depthwise convolution
	Residual   bool        // an identity residual is possible: stride 1 and equal widths
	Candidates []Candidate // candidates allowed here (Zero only where Residual)
}

// Plan is a validated space with every position's sizes worked out.
type Plan struct {
	Space      *Space
	Candidates []Candidate // the space's candidate list, in order
	Stem       FixedConv
	First      FixedBlock
	Layers     []Layer
	Head       FixedConv
	Classes    int
}

// Plan validates s and enumerates its layer positions.
func (s *Space) Plan() (*Plan, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cands, _ := parseNames(s.Candidates)
	p := &Plan{Space: s.Clone(), Candidates: cands, Classes: s.Classes}
	in := Shape{s.Input.Height, s.Input.Width, s.Input.Channels}
	out := Shape{ConvOut(in.H, s.Stem.Kernel, s.Stem.Stride), ConvOut(in.W, s.Stem.Kernel, s.Stem.Stride), s.Stem.Channels}
	p.Stem = FixedConv{In: in, Out: out, Kernel: s.Stem.Kernel, Stride: s.Stem.Stride}
	in = out
	out = Shape{ConvOut(in.H, s.First.Kernel, s.First.Stride), ConvOut(in.W, s.First.Kernel, s.First.Stride), s.First.Channels}
	p.First = FixedBlock{In: in, Out: out, Kernel: s.First.Kernel, Expand: s.First.Expand, Stride: s.First.Stride}
	in = out
	for si, st := range s.Stages {
		for pos := 0; pos < st.Layers; pos++ {
			stride := 1
			if pos == 0 {
				stride = st.Stride
			}
			l := Layer{Index: len(p.Layers), Stage: si + 1, Pos: pos, In: in, Stride: stride}
			// Every odd kernel with padding k/2 gives the same output size.
			l.Out = Shape{ConvOut(in.H, 1, stride), ConvOut(in.W, 1, stride), st.Channels}
			l.Residual = stride == 1 && in.C == st.Channels
			for _, c := range cands {
				if c.Zero && !l.Residual {
					continue
				}
				l.Candidates = append(l.Candidates, c)
			}
			p.Layers = append(p.Layers, l)
			in = l.Out
		}
	}
	p.Head = FixedConv{In: in, Out: Shape{in.H, in.W, s.Head.Channels}, Kernel: 1, Stride: 1}
	return p, nil
}

// NumChoices returns the number of distinct architectures of the plan.
func (p *Plan) NumChoices() float64 {
	n := 1.0
	for _, l := range p.Layers {
		n *= float64(len(l.Candidates))
	}
	return n
}
