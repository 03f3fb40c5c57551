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
	lm *search.LatencyModel // the table's model, with --latency-target

	Space      string   `help:"Search space: a built-in name (${spaces}) or a JSON file." default:"fmnist"`
	Candidates string   `help:"Candidate ops, comma separated (default: the space's)." placeholder:"LIST"`
	N          int      `short:"n" help:"Random architectures to draw (each layer's candidate uniformly)." default:"0"`
	Uniform    []string `help:"Uniform architectures: the named candidate at every layer, e.g. k3e3,k3e6,k7e6." placeholder:"CAND,..."`
	Seed       int64    `help:"Seed of the random draws and of the initial weights." default:"0"`
	LUT        string   `name:"lut" help:"Latency table for --latency-target (default: the target's)." type:"existingfile" placeholder:"TABLE.json"`
	Target     string   `help:"Target whose latency table --latency-target uses when --lut is not given (default: the built-in target with the best kernels this machine runs)." placeholder:"NAME"`
	Latency    string   `name:"latency-target" help:"Draw the -n random architectures among those whose predicted latency is within --tolerance of this, e.g. 120us (the random baseline at equal latency)." placeholder:"DURATION"`
	Tolerance  float64  `help:"Relative half-width of the --latency-target band." default:"0.1"`
	Output     string   `short:"o" required:"" help:"Directory for the model files (SPACE-random-I.json, SPACE-CAND.json)." placeholder:"DIR"`
}

// Help gives examples.
func (SampleCmd) Help() string {
	return `Writes architectures of a search space as model files (with freshly
initialized weights) that pnas train trains: random ones, each layer's
candidate drawn uniformly (the same --seed gives the same ones), and the
uniform networks that take one candidate at every layer. Together with the
searched networks they are the baselines of a search.

With --latency-target, the random architectures are drawn uniformly among
those whose latency, as the table predicts it, lies within --tolerance of
the target (named SPACE-random-TARGET-I): the baseline that a searched
network of that target is compared with at equal latency.

Examples:
  pnas sample --space fmnist -n 5 --seed 1 -o nets/
  pnas sample --space fmnist --uniform k3e3,k3e6,k7e6 -o nets/
  # random nets whose predicted latency is within 10% of 120 µs
  pnas sample --space fmnist -n 3 --latency-target 120us --lut lut.json -o nets/
  pnas train nets/fmnist-random-0.json -o runs/random-0`
}

// Run writes the models.
func (c *SampleCmd) Run(g *globals) error {
	if c.N < 0 {
		return &exitError{code: 2, err: fmt.Errorf("-n: expected 0 or more architectures, got %d", c.N)}
	}
	if c.Latency != "" && c.N == 0 {
		return &exitError{code: 2, err: fmt.Errorf("--latency-target %s: expected -n N random architectures to draw at that latency", c.Latency)}
	}
	if !(c.Tolerance > 0 && c.Tolerance < 1) {
		return &exitError{code: 2, err: fmt.Errorf("--tolerance: expected a value in (0, 1), got %g", c.Tolerance)}
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
	if c.Latency == "" {
		for i, choice := range search.Sample(plan, c.N, c.Seed) {
			nets = append(nets, named{fmt.Sprintf("%s-random-%d", sp.Name, i), choice})
		}
	} else {
		drawn, err := c.sampleWithin(plan)
		if err != nil {
			return err
		}
		for i, choice := range drawn {
			nets = append(nets, named{fmt.Sprintf("%s-random-%s-%d", sp.Name, c.Latency, i), choice})
		}
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
		fmt.Fprintf(g.stdout, "%s\t%s\t%.2f MMACs", path, search.ChoiceString(plan, nets[i].choice), float64(search.ArchMACs(plan, nets[i].choice))/1e6)
		if c.lm != nil {
			fmt.Fprintf(g.stdout, "\t%.1f µs predicted", c.lm.Of(nets[i].choice))
		}
		fmt.Fprintln(g.stdout)
	}
	return nil
}

// sampleWithin draws c.N architectures whose latency under the table lies
// within c.Tolerance of c.Latency.
func (c *SampleCmd) sampleWithin(plan *space.Plan) ([][]int, error) {
	t, err := parseMicros(c.Latency)
	if err != nil {
		return nil, err
	}
	lut, err := loadLUT(c.LUT, c.Target, plan.Space.Name)
	if err != nil {
		return nil, err
	}
	if c.lm, err = search.NewLatencyModel(plan, lut.SearchTable()); err != nil {
		return nil, err
	}
	fast, slow := extremes(plan, c.lm)
	lo, hi := t*(1-c.Tolerance), t*(1+c.Tolerance)
	if hi < fast || lo > slow {
		return nil, &exitError{code: 2, err: fmt.Errorf("--latency-target %s: unreachable: the networks of space %s under table %s take %.1f to %.1f µs",
			c.Latency, plan.Space.Name, c.lm.TableID, fast, slow)}
	}
	return search.SampleWithin(plan, c.lm, lo, hi, c.N, c.Seed)
}
