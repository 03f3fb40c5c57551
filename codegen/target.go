package codegen

import (
	"fmt"

	"github.com/pnasml/pnas/targets"
)

// kernelRank orders kernel sets as presets.json declares them (the portable
// set first).
func kernelRank(name string) int {
	sets, err := targets.KernelSets()
	if err != nil {
		return -1
	}
	for i, ks := range sets {
		if ks.Name == name {
			return i
		}
	}
	return -1
}

// HostTarget returns the built-in CPU target with the best kernel set this
// machine supports (the first in preset order among equals): the default
// of pnas compile.
func HostTarget() (*targets.Target, error) {
	all, err := targets.List()
	if err != nil {
		return nil, err
	}
	var best *targets.Target
	for _, t := range all {
		if !t.Builtin() || t.DeviceKind() != targets.DeviceCPU || t.HostSupports() != nil {
			continue
		}
		if best == nil || kernelRank(t.KernelSet) > kernelRank(best.KernelSet) {
			best = t
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no built-in target runs on this machine")
	}
	return best, nil
}
