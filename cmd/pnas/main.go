// Command pnas searches neural network architectures with ProxylessNAS on
// the user's data and hardware and compiles the result into small,
// standalone inference programs.
//
// Run `pnas --help` for the commands and `pnas COMMAND --help` for each
// command's flags and examples.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/search"
	"github.com/pnasml/pnas/search/space"
)

// CLI is the command tree.
type CLI struct {
	VersionFlag kong.VersionFlag `name:"version" help:"Print the pnas version and exit."`

	Search    SearchCmd    `cmd:"" help:"Search an architecture with ProxylessNAS on your data against a target's latency table."`
	Derive    DeriveCmd    `cmd:"" help:"Derive another network from a finished search: at another latency budget, or by another rule."`
	Train     TrainCmd     `cmd:"" help:"Train a network (from pnas search or pnas sample) with the reference recipe."`
	Pareto    ParetoCmd    `cmd:"" help:"Measure trained networks with their compiled programs and plot accuracy against latency."`
	Sample    SampleCmd    `cmd:"" help:"Write random or uniform architectures of a search space as model files for pnas train."`
	Inspect   InspectCmd   `cmd:"" help:"Show a model's ops, output shapes, parameters and MACs."`
	Eval      EvalCmd      `cmd:"" help:"Measure a model's accuracy on a data set with the reference interpreter."`
	Import    ImportCmd    `cmd:"" help:"Convert an ONNX model into a pnas model."`
	Export    ExportCmd    `cmd:"" help:"Write a pnas model as ONNX."`
	Compile   CompileCmd   `cmd:"" help:"Compile a model into a standalone Go inference program."`
	Profile   ProfileCmd   `cmd:"" help:"Build a latency table by timing generated code for every candidate of a search space."`
	LUT       LUTCmd       `cmd:"" name:"lut" help:"Build and show latency tables."`
	Calibrate CalibrateCmd `cmd:"" help:"Append measurements from deployed programs and refit a latency table."`
	Version   VersionCmd   `cmd:"" help:"Print the pnas version."`
}

// exitError carries a process exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status: 0 on success,
// 1 when the command failed, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) (code int) {
	var cli CLI
	exited := false
	parser, err := kong.New(&cli,
		kong.Name("pnas"),
		kong.Description("Search neural network architectures with ProxylessNAS on your data and hardware, and compile them into standalone inference programs."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { exited = true; code = c }),
		kong.Vars{"version": "pnas " + Version(), "datasets": data.Specs, "spaces": strings.Join(space.Names(), ", "), "backends": strings.Join(search.Backends(), ", ")},
	)
	if err != nil {
		fmt.Fprintf(stderr, "pnas: %v\n", err)
		return 1
	}
	ctx, err := parser.Parse(joinNegative(args))
	if exited { // --help
		return code
	}
	if err != nil {
		fmt.Fprintf(stderr, "pnas: %v\n", err)
		return 2
	}
	ctx.BindTo(stdout, (*io.Writer)(nil))
	if err := ctx.Run(&globals{stdout: stdout, stderr: stderr}); err != nil {
		fmt.Fprintf(stderr, "pnas: %v\n", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// globals is what every command's Run receives.
type globals struct {
	stdout, stderr io.Writer
}

// joinNegative joins a long flag and a negative number after it ("--epochs
// -1" becomes "--epochs=-1"), so that the flag's own check reports the
// value instead of the parser taking "-1" for a flag.
func joinNegative(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "--") && len(a) > 2 && !strings.Contains(a, "=") && i+1 < len(args) && strings.HasPrefix(args[i+1], "-") {
			if _, err := strconv.ParseFloat(args[i+1], 64); err == nil {
				out = append(out, a+"="+args[i+1])
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}
