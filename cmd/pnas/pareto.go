package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pnasml/pnas/codegen"
	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/internal/atomicfile"
	"github.com/pnasml/pnas/internal/plots"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/targets"
)

// ParetoCmd measures networks with their compiled programs and plots
// accuracy against latency.
type ParetoCmd struct {
	Nets          []string `arg:"" help:"Trained models as GROUP=MODEL.json (group: searched, random, uniform, or any name); GROUP=A.json+B.json+... for one architecture trained several times (e.g. with other seeds): its accuracy is their mean." placeholder:"GROUP=MODEL.json"`
	Data          string   `help:"Data set: ${datasets}." default:"fashion-mnist"`
	Split         string   `help:"Split on which accuracy is measured." default:"test" enum:"train,test"`
	Limit         int      `help:"Evaluate only the first N images (0 = all)." default:"0"`
	Target        string   `help:"Target to compile for (default: the built-in target with the best kernels this machine runs)." placeholder:"NAME"`
	Runs          int      `help:"Timed runs per network (batch 1, 1 thread)." default:"200"`
	LatencyTarget []string `name:"latency-target" help:"Target latencies to mark, e.g. 300us or 110us,180us,300us." placeholder:"DURATION,..."`
	Title         string   `help:"Plot title (default: data set and target)."`
	Output        string   `short:"o" required:"" help:"Directory for pareto.png, pareto.json, pareto.md and the compiled programs." placeholder:"DIR"`
}

// Help gives examples.
func (ParetoCmd) Help() string {
	return `Compiles every model, times it with its own program (-bench, batch 1,
1 thread, median), measures its top-1 accuracy with the same program
(-eval) on the split, and writes DIR/pareto.png (accuracy against latency,
one colour and marker per group, each group's Pareto front, the target
latencies marked), DIR/pareto.json and DIR/pareto.md (a table of accuracy,
latency, MACs and parameters for every net).

GROUP=A.json+B.json+... names several trainings of one architecture (the
same ops, e.g. trained with --seed 1, 2 and 3): the program of the first is
timed, every one is evaluated, and the net's accuracy is their mean, with
each training's accuracy and the standard deviation in the table and the
range as a bar in the plot.

Examples:
  pnas pareto searched=runs/t200/model.json searched=runs/t300/model.json \
    random=runs/r0/model.json uniform=runs/k3e3/model.json --latency-target 300us -o pareto/
  pnas pareto searched=runs/t300-s1/model.json+runs/t300-s2/model.json \
    random=runs/r0-s1/model.json+runs/r0-s2/model.json --latency-target 300us -o pareto/`
}

// paretoRow is one network of pareto.json.
type paretoRow struct {
	Group    string  `json:"group"`
	Model    string  `json:"model"`
	Name     string  `json:"name"`
	Arch     string  `json:"arch,omitempty"`
	Accuracy float64 `json:"accuracy"` // the mean over Runs when there are several
	N        int     `json:"n"`
	// Runs holds the accuracy of each training when the net was trained
	// several times (Models), SD their standard deviation.
	Models    []string  `json:"models,omitempty"`
	Runs      []float64 `json:"runs,omitempty"`
	SD        float64   `json:"sd,omitempty"`
	LatencyUS float64   `json:"latency_us"`
	MACs      int64     `json:"macs"`
	Params    int       `json:"params"`
}

// Run measures and plots.
func (c *ParetoCmd) Run(g *globals) error {
	if c.Runs < 1 {
		return &exitError{code: 2, err: fmt.Errorf("--runs: expected a positive number, got %d", c.Runs)}
	}
	var lts []float64
	for _, s := range c.LatencyTarget {
		t, err := parseMicros(s)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		lts = append(lts, t)
	}
	type net struct {
		group  string
		paths  []string    // one, or several trainings of one architecture
		models []*ir.Model // their models; models[0]'s program is timed
	}
	var nets []net
	for _, a := range c.Nets {
		group, list, ok := strings.Cut(a, "=")
		paths := strings.Split(list, "+")
		if !ok || group == "" || slices.Contains(paths, "") {
			return &exitError{code: 2, err: fmt.Errorf("%q: expected GROUP=MODEL.json or GROUP=A.json+B.json", a)}
		}
		nt := net{group: group, paths: paths}
		for j, p := range paths {
			m, err := ir.Load(p)
			if err != nil {
				return err
			}
			if j > 0 {
				if err := sameArchitecture(nt.models[0], m); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("%s: not the architecture of %s: %v", p, paths[0], err)}
				}
			}
			nt.models = append(nt.models, m)
		}
		nets = append(nets, nt)
	}
	t, err := resolveTarget(c.Target)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Output, 0o755); err != nil {
		return err
	}
	in := nets[0].models[0].Input.Shape
	ds, err := data.Open(c.Data, c.Split, in[0], in[1], in[2])
	if err != nil {
		return err
	}
	n := ds.Len()
	if c.Limit > 0 && c.Limit < n {
		n = c.Limit
	}
	images, labels := filepath.Join(c.Output, "eval-images-idx-ubyte"), filepath.Join(c.Output, "eval-labels-idx1-ubyte")
	if err := writeIDX(ds, n, images, labels); err != nil {
		return err
	}
	defer os.Remove(images)
	defer os.Remove(labels)
	var rows []paretoRow
	for i, nt := range nets {
		m0 := nt.models[0]
		st, err := m0.Stats()
		if err != nil {
			return fmt.Errorf("%s: %w", nt.paths[0], err)
		}
		row := paretoRow{Group: nt.group, Model: nt.paths[0], Name: m0.Name, MACs: st.MACs, Params: st.Params}
		var accs []float64
		for j, m := range nt.models {
			dir := filepath.Join(c.Output, "bin", fmt.Sprintf("%d-%s", i, nt.group))
			if j > 0 {
				dir += fmt.Sprintf("-%d", j)
			}
			bin, err := codegen.GenerateAndBuild([]*ir.Model{m}, codegen.Options{Target: t}, dir, codegen.BuildOptions{Target: t})
			if err != nil {
				return fmt.Errorf("%s: %w", nt.paths[j], err)
			}
			if j == 0 {
				out, err := runProgram(bin, "-bench", fmt.Sprint(c.Runs), "-warmup", "20", "-threads", "1", "-json")
				if err != nil {
					return err
				}
				rep, err := targets.ParseBench(out)
				if err != nil {
					return fmt.Errorf("%s -bench: %w", bin, err)
				}
				row.LatencyUS = float64(rep.Total.MedianNS) / 1e3
			}
			be, err := evalProgram(bin, images, labels)
			if err != nil {
				return err
			}
			accs = append(accs, be.Accuracy)
			row.N = be.N
		}
		row.Accuracy = accs[0]
		if len(accs) > 1 {
			row.Models, row.Runs = nt.paths, accs
			row.Accuracy, row.SD = meanSD(accs)
		}
		if s := m0.Metadata.Search; s != nil {
			row.Arch = archNames(s.Choices)
		}
		rows = append(rows, row)
		fmt.Fprintf(g.stdout, "%-10s %-40s accuracy %.4f%s  latency %8.1f µs  %6.2f MMACs  %7d params\n",
			row.Group, row.Model, row.Accuracy, runsNote(row), row.LatencyUS, float64(row.MACs)/1e6, row.Params)
	}
	uniqueNames(rows)
	b, _ := json.MarshalIndent(rows, "", "  ")
	if err := atomicfile.Write(filepath.Join(c.Output, "pareto.json"), append(b, '\n')); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(c.Output, "pareto.md"), []byte(paretoTable(rows, c.Data, c.Split, t.Name))); err != nil {
		return err
	}
	title := c.Title
	if title == "" {
		title = fmt.Sprintf("%s %s accuracy vs latency on %s", c.Data, c.Split, t.Name)
	}
	if err := writePNG(filepath.Join(c.Output, "pareto.png"), func() ([]byte, error) { return paretoPlot(rows, title, lts) }); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "wrote %s, %s, %s\n", filepath.Join(c.Output, "pareto.png"), filepath.Join(c.Output, "pareto.json"), filepath.Join(c.Output, "pareto.md"))
	return nil
}

// paretoPlot draws the rows, one group per distinct Group in order of
// first appearance; points are labelled by name without the prefix that
// every name shares up to a dash (the space's name, e.g. "fmnist-").
func paretoPlot(rows []paretoRow, title string, lts []float64) ([]byte, error) {
	prefix := sharedPrefix(rows)
	var groups []plots.Group
	index := map[string]int{}
	for _, r := range rows {
		gi, ok := index[r.Group]
		if !ok {
			gi = len(groups)
			index[r.Group] = gi
			groups = append(groups, plots.Group{Name: r.Group})
		}
		pt := plots.Point{Label: strings.TrimPrefix(r.Name, prefix), LatencyUS: r.LatencyUS, Accuracy: r.Accuracy}
		if len(r.Runs) > 1 {
			pt.Lo, pt.Hi = slices.Min(r.Runs), slices.Max(r.Runs)
		}
		groups[gi].Points = append(groups[gi].Points, pt)
	}
	return plots.Pareto(title, groups, lts...)
}

// sharedPrefix is the longest prefix ending in a dash that every row's
// name has ("" for fewer than two rows).
func sharedPrefix(rows []paretoRow) string {
	if len(rows) < 2 {
		return ""
	}
	prefix := rows[0].Name
	for _, r := range rows[1:] {
		for !strings.HasPrefix(r.Name, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	return prefix[:strings.LastIndex(prefix, "-")+1]
}

// evalProgram measures a compiled program's accuracy on IDX files.
func evalProgram(bin, images, labels string) (binaryEval, error) {
	var be binaryEval
	out, err := runProgram(bin, "-eval", images, "-labels", labels, "-json")
	if err != nil {
		return be, err
	}
	if err := json.Unmarshal(out, &be); err != nil {
		return be, fmt.Errorf("%s -eval: %v", bin, err)
	}
	return be, nil
}

// sameArchitecture reports how two models differ in their input or ops, or
// nil. What training sets is not compared: the weights, and the input's
// mean and standard deviation (measured on the training images that the
// seed's hold-out split leaves).
func sameArchitecture(a, b *ir.Model) error {
	if d := cmp.Diff(a.Input, b.Input, cmpopts.IgnoreFields(ir.Input{}, "Mean", "Std")); d != "" {
		return fmt.Errorf("inputs differ (-first +this):\n%s", d)
	}
	if len(a.Ops) != len(b.Ops) {
		return fmt.Errorf("%d ops, expected %d", len(b.Ops), len(a.Ops))
	}
	for i := range a.Ops {
		if d := cmp.Diff(a.Ops[i], b.Ops[i]); d != "" {
			return fmt.Errorf("op %d (%s) differs (-first +this):\n%s", i, a.Ops[i].Name, d)
		}
	}
	return nil
}

// meanSD returns the mean and the sample standard deviation of xs.
func meanSD(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

// runsNote is " (mean of 0.8811 0.8850 0.8790, sd 0.0030)" for a net
// trained several times, "" otherwise.
func runsNote(r paretoRow) string {
	if len(r.Runs) < 2 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" (mean of")
	for _, x := range r.Runs {
		fmt.Fprintf(&b, " %.4f", x)
	}
	fmt.Fprintf(&b, ", sd %.4f)", r.SD)
	return b.String()
}

func runProgram(bin string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", bin, args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// archNames shortens choice annotations: "mbconv k3 e6" -> "k3e6".
func archNames(choices []string) string {
	out := make([]string, len(choices))
	for i, c := range choices {
		out[i] = strings.ReplaceAll(strings.TrimPrefix(c, "mbconv "), " ", "")
	}
	return strings.Join(out, "-")
}

// paretoTable renders the rows as a Markdown table.
func paretoTable(rows []paretoRow, dataset, split, target string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| group | network | top-1 (%s %s) | latency µs (%s, batch 1, 1 thread, median) | MMACs | params | architecture |\n", dataset, split, target)
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %.4f%s | %.1f | %.2f | %d | %s |\n", r.Group, r.Name, r.Accuracy, runsNote(r), r.LatencyUS, float64(r.MACs)/1e6, r.Params, r.Arch)
	}
	return b.String()
}

// uniqueNames tells apart rows whose models share a name (the searches of
// one space all write "<space>-searched") by the directory of each model,
// e.g. "fmnist-searched (train-200us)".
func uniqueNames(rows []paretoRow) {
	count := map[string]int{}
	for _, r := range rows {
		count[r.Name]++
	}
	for i, r := range rows {
		if count[r.Name] > 1 {
			rows[i].Name = fmt.Sprintf("%s (%s)", r.Name, filepath.Base(filepath.Dir(r.Model)))
		}
	}
}
