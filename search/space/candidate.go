package space

import (
	"fmt"
	"strconv"
	"strings"
)

// Candidate is one operation a searchable layer may choose: an inverted
// residual block (MBConv) with a Kernel x Kernel depthwise convolution and
// expansion ratio Expand, or the Zero operation, which outputs zeros and so,
// together with the block's identity residual, skips the layer.
type Candidate struct {
	Kernel int  // depthwise kernel size (odd); 0 for Zero
	Expand int  // expansion ratio of the 1x1 expand convolution; 0 for Zero
	Zero   bool // the Zero operation
}

// ZeroName is the name of the Zero candidate.
const ZeroName = "zero"

// Limits on candidate parameters accepted by ParseCandidate.
const (
	MaxKernel = 11 // largest depthwise kernel
	MaxExpand = 8  // largest expansion ratio
)

// DefaultCandidates are the ProxylessNAS candidates in the reference order:
// kernel 3/5/7 by expansion 3/6, then Zero.
var DefaultCandidates = []string{"k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6", ZeroName}

// Name returns the candidate's name: "k5e6" or "zero".
func (c Candidate) Name() string {
	if c.Zero {
		return ZeroName
	}
	return fmt.Sprintf("k%de%d", c.Kernel, c.Expand)
}

// String returns Name.
func (c Candidate) String() string { return c.Name() }

// ParseCandidate reads a candidate name: "kKeE" (an MBConv with odd kernel
// K in 1..MaxKernel and expansion E in 1..MaxExpand) or "zero".
func ParseCandidate(name string) (Candidate, error) {
	s := strings.TrimSpace(name)
	if s == ZeroName {
		return Candidate{Zero: true}, nil
	}
	bad := func(why string) (Candidate, error) {
		return Candidate{}, fmt.Errorf("candidate %q: expected \"kKeE\" (e.g. k5e6) or %q: %s", name, ZeroName, why)
	}
	if !strings.HasPrefix(s, "k") {
		return bad("missing leading k")
	}
	ks, es, ok := strings.Cut(s[1:], "e")
	if !ok {
		return bad("missing e")
	}
	k, err := strconv.Atoi(ks)
	if err != nil {
		return bad("kernel is not an integer")
	}
	e, err := strconv.Atoi(es)
	if err != nil {
		return bad("expansion is not an integer")
	}
	if k < 1 || k > MaxKernel || k%2 == 0 {
		return bad(fmt.Sprintf("kernel must be odd in 1..%d, got %d", MaxKernel, k))
	}
	if e < 1 || e > MaxExpand {
		return bad(fmt.Sprintf("expansion must be in 1..%d, got %d", MaxExpand, e))
	}
	return Candidate{Kernel: k, Expand: e}, nil
}

// ParseCandidates reads a comma-separated candidate list such as
// "k3e3,k5e6,zero" (the --candidates flag). Names must be distinct and at
// least one must be an MBConv.
func ParseCandidates(list string) ([]Candidate, error) {
	if strings.TrimSpace(list) == "" {
		return nil, fmt.Errorf("candidates: expected a comma-separated list such as \"k3e3,k5e6,zero\", got an empty string")
	}
	return parseNames(strings.Split(list, ","))
}

func parseNames(names []string) ([]Candidate, error) {
	var out []Candidate
	seen := map[string]bool{}
	mbconv := 0
	for i, n := range names {
		c, err := ParseCandidate(n)
		if err != nil {
			return nil, fmt.Errorf("candidates[%d]: %w", i, err)
		}
		if seen[c.Name()] {
			return nil, fmt.Errorf("candidates[%d]: %q appears twice", i, c.Name())
		}
		seen[c.Name()] = true
		if !c.Zero {
			mbconv++
		}
		out = append(out, c)
	}
	if mbconv == 0 {
		return nil, fmt.Errorf("candidates: expected at least one MBConv candidate (kKeE), got only %q", ZeroName)
	}
	return out, nil
}

// CandidateNames returns the names of cs in order.
func CandidateNames(cs []Candidate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name()
	}
	return out
}
