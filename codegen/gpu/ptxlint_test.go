package gpu_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pnasml/pnas/codegen/gpu"
	"github.com/pnasml/pnas/ir/pass"
)

// The PTX the printer writes is only compiled by a GPU's driver; lintPTX
// checks what can be checked without one: every instruction is one the
// printer means to write, with operands of the register class (or
// immediate) the instruction takes, every register declared, every branch
// target defined once.

// operand classes: r int32 register or immediate, R int32 register only, f
// float32 register or immediate, F float32 register only, p predicate, d
// 64-bit register, [d] global address, [r] shared address, s special
// register or shared array, P a parameter in brackets.
var ptxForms = map[string]string{
	"ld.param.u64": "d,P", "ld.param.u32": "R,P", "cvta.to.global.u64": "d,d",
	"mov.u32": "R,s", "mov.s32": "R,r", "mov.b32": "R,r", "mov.f32": "F,f", "mov.pred": "p,p",
	"add.s32": "R,R,r", "sub.s32": "R,R,r", "mul.lo.s32": "R,R,r", "min.s32": "R,R,r", "max.s32": "R,R,r",
	"div.u32": "R,R,r", "rem.u32": "R,R,r", "mad.lo.s32": "R,R,r,R",
	"add.rn.f32": "F,F,f", "sub.rn.f32": "F,F,f", "mul.rn.f32": "F,F,f", "min.f32": "F,F,f", "max.f32": "F,F,f",
	"fma.rn.f32": "F,F,F,F", "ex2.approx.ftz.f32": "F,F", "rcp.rn.f32": "F,F", "cvt.rn.f32.s32": "F,R",
	"setp.lt.s32": "p,R,r", "setp.le.s32": "p,R,r", "setp.ge.s32": "p,R,r", "setp.eq.s32": "p,R,r",
	"setp.lt.f32": "p,F,f", "setp.le.f32": "p,F,f", "setp.ge.f32": "p,F,f", "setp.eq.f32": "p,F,f",
	"and.pred": "p,p,p", "selp.f32": "F,F,F,p", "selp.b32": "R,R,R,p",
	"mul.wide.s32": "d,R,r", "add.s64": "d,d,d",
	"ld.global.f32": "F,[d]", "ld.global.nc.f32": "F,[d]", "st.global.f32": "[d],F",
	"ld.shared.f32": "F,[r]", "st.shared.f32": "[r],F",
	"bar.sync": "n", "bra": "L", "ret": "",
}

var (
	regRE   = regexp.MustCompile(`%(p|r|f|rd)(\d+)`)
	declRE  = regexp.MustCompile(`^\t\.reg \.(pred|b32|f32|b64) %(p|r|f|rd)<(\d+)>;$`)
	labelRE = regexp.MustCompile(`^(\$L\d+):$`)
)

func operandOK(class, op string, shared map[string]bool) bool {
	reg := func(prefix string) bool {
		m := regRE.FindStringSubmatch(op)
		return m != nil && m[0] == op && m[1] == prefix
	}
	isInt := func() bool { _, err := strconv.ParseInt(op, 10, 32); return err == nil }
	isFloat := func() bool { return regexp.MustCompile(`^0f[0-9A-F]{8}$`).MatchString(op) }
	switch class {
	case "r":
		return reg("r") || isInt()
	case "R":
		return reg("r")
	case "f":
		return reg("f") || isFloat()
	case "F":
		return reg("f")
	case "p":
		return reg("p")
	case "d":
		return reg("rd")
	case "[d]":
		return strings.HasPrefix(op, "[") && strings.HasSuffix(op, "]") && operandOK("d", op[1:len(op)-1], shared)
	case "[r]":
		return strings.HasPrefix(op, "[") && strings.HasSuffix(op, "]") && operandOK("R", op[1:len(op)-1], shared)
	case "s":
		return shared[op] || op == "%tid.x" || op == "%ctaid.x" || op == "%ctaid.y" || op == "%ntid.x"
	case "P":
		return regexp.MustCompile(`^\[[A-Za-z_][A-Za-z0-9_]*_[pi]\d+\]$`).MatchString(op)
	case "n":
		return op == "0"
	case "L":
		return strings.HasPrefix(op, "$L")
	}
	return false
}

func lintPTX(ptx string) error {
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	for _, entry := range strings.Split(ptx, ".visible .entry ")[1:] {
		name, _, _ := strings.Cut(entry, "(")
		decl := map[string]int{}
		shared := map[string]bool{}
		labels := map[string]int{}
		var targets []string
		for _, line := range strings.Split(entry, "\n") {
			if m := declRE.FindStringSubmatch(line); m != nil {
				decl[m[2]], _ = strconv.Atoi(m[3])
				continue
			}
			if strings.HasPrefix(line, "\t.shared ") {
				f := strings.Fields(line)
				arr, _, _ := strings.Cut(f[len(f)-1], "[")
				shared[arr] = true
				continue
			}
			if m := labelRE.FindStringSubmatch(line); m != nil {
				labels[m[1]]++
				continue
			}
			if !strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "\t.param") {
				continue
			}
			ins := strings.TrimSpace(line)
			if !strings.HasSuffix(ins, ";") {
				fail("%s: %q does not end in ';'", name, ins)
				continue
			}
			ins = strings.TrimSuffix(ins, ";")
			if strings.HasPrefix(ins, "@") {
				guard, rest, _ := strings.Cut(ins, " ")
				if !operandOK("p", strings.TrimPrefix(strings.TrimPrefix(guard, "@"), "!"), shared) {
					fail("%s: guard %q", name, guard)
				}
				ins = rest
			}
			mn, args, _ := strings.Cut(ins, " ")
			form, ok := ptxForms[mn]
			if !ok {
				fail("%s: unexpected instruction %q", name, ins)
				continue
			}
			var ops []string
			if args != "" {
				ops = strings.Split(args, ", ")
			}
			classes := strings.Split(form, ",")
			if form == "" {
				classes = nil
			}
			if len(ops) != len(classes) {
				fail("%s: %q: %d operands, expected %d", name, ins, len(ops), len(classes))
				continue
			}
			for i, op := range ops {
				if !operandOK(classes[i], op, shared) {
					fail("%s: %q: operand %d %q is not of class %s", name, ins, i+1, op, classes[i])
				}
			}
			if mn == "bra" {
				targets = append(targets, ops[0])
			}
			for _, m := range regRE.FindAllStringSubmatch(ins, -1) {
				if n, _ := strconv.Atoi(m[2]); n < 1 || n >= decl[m[1]] {
					fail("%s: %q uses %s beyond the declared %%%s<%d>", name, ins, m[0], m[1], decl[m[1]])
				}
			}
		}
		for l, n := range labels {
			if n != 1 {
				fail("%s: label %s defined %d times", name, l, n)
			}
		}
		for _, l := range targets {
			if labels[l] != 1 {
				fail("%s: branch to undefined label %s", name, l)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d problems, first: %s", len(errs), strings.Join(errs[:min(5, len(errs))], "; "))
	}
	return nil
}

// TestPTXLint lints the PTX of every kernel kind and of every kernel of
// the models of TestKernels.
func TestPTXLint(t *testing.T) {
	kernels := goldenKernels()
	for _, m := range kernelModels(t) {
		om, err := pass.Apply(m, pass.Options{})
		if err != nil {
			t.Fatal(err)
		}
		net, err := gpu.Lower(om)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range net.Kernels {
			k.Name = strings.ReplaceAll(m.Name, "-", "_") + "_" + k.Name
		}
		kernels = append(kernels, net.Kernels...)
	}
	ptx, err := gpu.PTX(gpu.SM80, kernels)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(ptx, ".visible .entry "); n != len(kernels) {
		t.Fatalf("%d entries for %d kernels", n, len(kernels))
	}
	if err := lintPTX(ptx); err != nil {
		t.Error(err)
	}
	// the lint finds what it looks for
	for _, bad := range []string{
		strings.Replace(ptx, "fma.rn.f32 %f", "fma.rn.f32 %r", 1),
		strings.Replace(ptx, "bra $L1;", "bra $L999;", 1),
		strings.Replace(ptx, "add.rn.f32", "add.f64", 1),
	} {
		if lintPTX(bad) == nil {
			t.Error("the lint passed broken PTX")
		}
	}
}
