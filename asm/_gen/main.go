// Command _gen writes the runtime package's amd64 assembly kernels and their
// Go declarations with avo. Run it through go generate in package asm:
//
//	go run -C=_gen github.com/pnasml/pnas/asm/_gen [-out DIR]
//
// It writes zgemm_avx2_amd64.{s,go}, zgemm_avx512_amd64.{s,go},
// zdw_avx2_amd64.{s,go} and zdw_avx512_amd64.{s,go} into DIR (default
// ../../runtime), the arm64 NEON kernels zgemm_neon_arm64.{s,go} and
// zdw_neon_arm64.{s,go} (neon.go) and the kernels of DIR/kernels. Output depends only on the program and its flags other
// than -out: no maps are iterated, no time or path is recorded.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/pass"
	"github.com/mmcloughlin/avo/printer"
)

// unit is one generated pair of files.
type unit struct {
	name string                   // file stem: z<name>_amd64.s / .go
	gen  func(ctx *build.Context) // adds the functions
}

// One unit per kernel family and instruction set, so that a compiled
// program copies only the files of its own kernel set.
var units = []unit{
	{"gemm_avx2", genGEMM(avx2)},
	{"gemm_avx512", genGEMM(avx512)},
	{"dw_avx2", genDW(avx2)},
	{"dw_avx512", genDW(avx512)},
}

func main() {
	// avo's build package owns flag.CommandLine; use a set of our own.
	fs := flag.NewFlagSet("_gen", flag.ExitOnError)
	out := fs.String("out", "../../runtime", "directory to write the generated files into (not recorded in their banner)")
	fs.Parse(os.Args[1:])
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "_gen: unexpected arguments %q\n", fs.Args())
		os.Exit(2)
	}
	cfg := printer.Config{Argv: argv(os.Args[1:]), Pkg: "runtime"}
	for _, u := range units {
		asm, stubs, err := render(u, cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "_gen: %s: %v\n", u.name, err)
			os.Exit(1)
		}
		base := filepath.Join(*out, "z"+u.name+"_amd64")
		if err := os.WriteFile(base+".s", asm, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "_gen:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(base+".go", stubs, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "_gen:", err)
			os.Exit(1)
		}
	}
	writeKernels(*out)
	writeNEON(*out)
}

// argv is the command recorded in the banner: the go:generate invocation
// plus every flag except -out, which only picks the destination.
func argv(args []string) []string {
	cmd := []string{"go", "run", "-C=_gen", "github.com/pnasml/pnas/asm/_gen"}
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == "out" {
			i++
			continue
		}
		if strings.HasPrefix(a, "out=") {
			continue
		}
		cmd = append(cmd, args[i])
	}
	return cmd
}

// render builds one unit and prints its assembly and stub files.
func render(u unit, cfg printer.Config) (asm, stubs []byte, err error) {
	ctx := build.NewContext()
	ctx.ConstraintExpr("!noasm,!purego")
	u.gen(ctx)
	f, err := ctx.Result()
	if err != nil {
		return nil, nil, err
	}
	if err := pass.Compile.Execute(f); err != nil {
		return nil, nil, err
	}
	if asm, err = printer.NewGoAsm(cfg).Print(f); err != nil {
		return nil, nil, err
	}
	if stubs, err = printer.NewStubs(cfg).Print(f); err != nil {
		return nil, nil, err
	}
	return asm, stubs, nil
}
