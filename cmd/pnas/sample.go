package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
)

// SampleCmd writes architectures of a space as model files.
type SampleCmd struct {
	Space      string   `help:"Search space: a built-in name (${spaces}) or a JSON file." default:"fmnist"`
	Candidates string   `help:"Candidate ops, comma separated (default: the space's)." placeholder:"LIST"`
	N          int      `short:"n" help:"Random architectures to draw (each layer's candidate uniformly)." default:"0"`
	Uniform    []string `help:"Uniform architectures: the named candidate at every layer, e.g. k3e3,k3e6,k7e6." placeholder:"CAND,..."`
	Seed       int64    `help:"Seed of the random draws and of the initial weights." default:"0"`
	Output     string   `short:"o" required:"" help:"Directory for the model files (SPACE-random-I.json, SPACE-CAND.json)." placeholder:"DIR"`
}

// Help gives examples.
func (SampleCmd) Help() string {
	return `Writes architectures of a search space as model files (with freshly
initialized weights) that pnas train trains: random ones, each layer's
candidate drawn uniformly (the same --seed gives the same ones), and the
uniform networks that take one candidate at every layer. Together with the
searched networks they are the baselines of a search.

Examples:
  pnas sample --space fmnist -n 5 --seed 1 -o nets/
  pnas sample --space fmnist --uniform k3e3,k3e6,k7e6 -o nets/
  pnas train nets/fmnist-random-0.json -o runs/random-0`
}

// Run writes the models.
func (c *SampleCmd) Run(g *globals) error {
	if c.N < 0 {
		return &exitError{code: 2, err: fmt.Errorf("-n: expected 0 or more architectures, got %d", c.N)}
	}
	if c.N == 0 && len(c.Uniform) == 0 {
		return &exitError{code: 2, err: fmt.Errorf("expected -n N random architectures and/or --uniform CAND,...")}
	}
	sp, err := space.Open(c.Space)
	if err != nil {
		return err
	}
	if c.Candidates != "" {
		sp = sp.Clone()
		sp.Candidates = strings.Split(c.Candidates, ",")
	}
	plan, err := sp.Plan()
	if err != nil {
		return err
	}
	type named struct {
		name   string
		choice []int
	}
	var nets []named
	for _, u := range c.Uniform {
		choice, err := search.UniformChoice(plan, u)
		if err != nil {
			return fmt.Errorf("--uniform %s: %w", u, err)
		}
		nets = append(nets, named{sp.Name + "-" + u, choice})
	}
	for i, choice := range search.Sample(plan, c.N, c.Seed) {
		nets = append(nets, named{fmt.Sprintf("%s-random-%d", sp.Name, i), choice})
	}
	// build every model before writing any, so that a failure writes nothing
	models := make([]*ir.Model, len(nets))
	for i, n := range nets {
		if models[i], err = search.ArchModel(plan, n.choice, n.name, c.Seed); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(c.Output, 0o755); err != nil {
		return err
	}
	for i, m := range models {
		path := filepath.Join(c.Output, m.Name+".json")
		if err := ir.Save(m, path); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s\t%s\t%.2f MMACs\n", path, search.ChoiceString(plan, nets[i].choice), float64(search.ArchMACs(plan, nets[i].choice))/1e6)
	}
	return nil
}
