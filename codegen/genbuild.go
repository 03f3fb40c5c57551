package codegen

import "github.com/pnasml/pnas/ir"

// GenerateAndBuild generates the program of models with opt, writes it
// to dir and builds it with bo, returning the binary's path: the one
// generate → write → build sequence of the commands and tools that build
// programs to run (profile, pareto, the latency benchmark, the GPU check).
// bo.Target defaults to opt.Target. Errors are those of Generate, Write and
// Build, unwrapped.
func GenerateAndBuild(models []*ir.Model, opt Options, dir string, bo BuildOptions) (string, error) {
	if bo.Target == nil {
		bo.Target = opt.Target
	}
	p, err := Generate(models, opt)
	if err != nil {
		return "", err
	}
	if err := p.Write(dir); err != nil {
		return "", err
	}
	return Build(dir, bo)
}
