package asm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// llvmSyntax translates the Go arm64 assembly forms that the NEON kernels'
// inner loops use into LLVM syntax, for llvm-mca.
func llvmSyntax(line string) (string, error) {
	l := strings.TrimSpace(line)
	if _, text, ok := strings.Cut(l, "// "); ok && strings.HasPrefix(l, "WORD") {
		return text, nil
	}
	l, _, _ = strings.Cut(l, " //")
	vregs := func(list string) string {
		var out []string
		for _, r := range strings.Split(list, ", ") {
			out = append(out, "v"+strings.TrimSuffix(strings.TrimPrefix(r, "V"), ".S4")+".4s")
		}
		return strings.Join(out, ", ")
	}
	x := func(r string) string { return "x" + strings.TrimPrefix(r, "R") }
	for _, f := range []struct {
		re  *regexp.Regexp
		out func(m []string) string
	}{
		{regexp.MustCompile(`^VLD1(R?)\.P (\d+)\((R\d+)\), \[(.*)\]$`), func(m []string) string {
			op := map[string]string{"": "ld1", "R": "ld1r"}[m[1]]
			return fmt.Sprintf("%s {%s}, [%s], #%s", op, vregs(m[4]), x(m[3]), m[2])
		}},
		{regexp.MustCompile(`^VLD1\.P \((R\d+)\)\((R\d+)\), \[(.*)\]$`), func(m []string) string {
			return fmt.Sprintf("ld1 {%s}, [%s], %s", vregs(m[3]), x(m[1]), x(m[2]))
		}},
		{regexp.MustCompile(`^VFMLA V(\d+)\.S4, V(\d+)\.S4, V(\d+)\.S4$`), func(m []string) string {
			return fmt.Sprintf("fmla v%s.4s, v%s.4s, v%s.4s", m[3], m[2], m[1])
		}},
		{regexp.MustCompile(`^VEOR V(\d+)\.B16, V(\d+)\.B16, V(\d+)\.B16$`), func(m []string) string {
			return fmt.Sprintf("eor v%s.16b, v%s.16b, v%s.16b", m[3], m[2], m[1])
		}},
		{regexp.MustCompile(`^MOVD (R\d+), (R\d+)$`), func(m []string) string { return fmt.Sprintf("mov %s, %s", x(m[2]), x(m[1])) }},
		{regexp.MustCompile(`^ADD (R\d+), (R\d+), (R\d+)$`), func(m []string) string {
			return fmt.Sprintf("add %s, %s, %s", x(m[3]), x(m[2]), x(m[1]))
		}},
		{regexp.MustCompile(`^SUBS \$(\d+), (R\d+), (R\d+)$`), func(m []string) string {
			return fmt.Sprintf("subs %s, %s, #%s", x(m[3]), x(m[2]), m[1])
		}},
		{regexp.MustCompile(`^BNE \w+$`), func([]string) string { return "b.ne 0b" }},
	} {
		if m := f.re.FindStringSubmatch(l); m != nil {
			return f.out(m), nil
		}
	}
	return "", fmt.Errorf("no LLVM form for %q", l)
}

// loopBody returns the lines of fn's loop from label to stop (exclusive),
// or to the loop's BNE (inclusive) when stop is "".
func loopBody(t *testing.T, file, fn, label, stop string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "runtime", file))
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(b), "\nTEXT ·"+fn+"(")
	if !ok {
		t.Fatalf("%s: no function %s", file, fn)
	}
	_, body, ok := strings.Cut(text, "\n"+label+":\n")
	if !ok {
		t.Fatalf("%s: %s has no label %s", file, fn, label)
	}
	if stop == "" {
		body, _, _ = strings.Cut(body, "BNE "+label)
		body += "BNE " + label
	} else {
		body, _, _ = strings.Cut(body, stop)
	}
	return strings.Split(strings.TrimSpace(body), "\n")
}

// TestNEONLoopsMCA runs the NEON kernels' multiply-accumulate loops through
// llvm-mca's model of a Cortex-A72 and reports cycles per iteration and
// FMLA per cycle (go test -v -run NEONLoopsMCA ./asm/). LLVM 14 gives the
// same cycles for -mcpu cortex-a57, cortex-a72, cortex-a76 and
// neoverse-n1/-v1 (the Cortex-A57 tables: one 128-bit FMLA per cycle), so
// the figures are those of an A72-class core, not of the A76's two FMA
// pipes. The 5-row GEMM loop must issue at least 0.9 FMLA per cycle there.
func TestNEONLoopsMCA(t *testing.T) {
	mca := ""
	for _, name := range []string{"llvm-mca", "llvm-mca-14", "llvm-mca-15", "llvm-mca-16"} {
		if p, err := exec.LookPath(name); err == nil {
			mca = p
			break
		}
	}
	if mca == "" {
		t.Fatal("llvm-mca not found: install Debian's llvm (make deps-apt does)")
	}
	cycles := regexp.MustCompile(`Total Cycles:\s+(\d+)`)
	const iters = 100
	for _, c := range []struct{ file, fn, label, stop string }{
		{"zgemm_neon_arm64.s", "gemmNEONm5", "k4", ""},
		{"zgemm_neon_arm64.s", "gemmNEONm4", "k4", ""},
		{"zdw_neon_arm64.s", "dwK3S1NEON", "vecq", "VLD1.P 32(R24)"},
		{"zdw_neon_arm64.s", "dwK3S2NEON", "vecq", "VLD1.P 32(R24)"},
		{"zdw_neon_arm64.s", "dwK5S1NEON", "vecq", "VLD1.P 32(R24)"},
		{"zdw_neon_arm64.s", "dwK7S1NEON", "vecq", "VLD1.P 32(R24)"},
		{"zdw_neon_arm64.s", "dwK7S2NEON", "vecq", "VLD1.P 32(R24)"},
	} {
		src := "0:\n"
		fma := 0
		for _, l := range loopBody(t, c.file, c.fn, c.label, c.stop) {
			s, err := llvmSyntax(l)
			if err != nil {
				t.Fatalf("%s: %v", c.fn, err)
			}
			if strings.HasPrefix(s, "fmla") {
				fma++
			}
			src += s + "\n"
		}
		cmd := exec.Command(mca, "-mtriple=aarch64", "-mcpu=cortex-a72", "-iterations="+strconv.Itoa(iters))
		cmd.Stdin = strings.NewReader(src)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: llvm-mca: %v\n%s", c.fn, err, out)
		}
		m := cycles.FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no cycle count in llvm-mca's output:\n%s", c.fn, out)
		}
		n, _ := strconv.Atoi(string(m[1]))
		per := float64(n) / iters
		rate := float64(fma) / per
		t.Logf("%-11s loop %-4s %3d FMLA in %6.1f cycles: %.2f FMLA/cycle", c.fn, c.label, fma, per, rate)
		if c.fn == "gemmNEONm5" && rate < 0.9 {
			t.Errorf("gemmNEONm5: %.2f FMLA per cycle on llvm-mca's Cortex-A72 model, want at least 0.9", rate)
		}
	}
}
