package asm

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The generator also writes the runtime's arm64 NEON kernels;
// TestGeneratedCurrent checks them with the amd64 ones.
func init() {
	generated = append(generated, neonFiles...)
}

var neonFiles = []string{
	"zgemm_neon_arm64.s", "zgemm_neon_arm64.go",
	"zdw_neon_arm64.s", "zdw_neon_arm64.go",
}

// wordLine is a WORD directive with its instruction in LLVM syntax.
var wordLine = regexp.MustCompile(`^\s*WORD \$0x([0-9a-f]{8}) // (.+)$`)

// llvmMC finds llvm-mc (Debian's llvm-14 installs llvm-mc-14).
func llvmMC(t *testing.T) string {
	for _, name := range []string{"llvm-mc", "llvm-mc-14", "llvm-mc-15", "llvm-mc-16"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("llvm-mc not found: install Debian's llvm (make deps-apt does)")
	return ""
}

// TestNEONEncodings checks every encoded instruction of the committed NEON
// kernels against llvm-mc: the WORD value must be llvm-mc's encoding of the
// instruction in the line's comment.
func TestNEONEncodings(t *testing.T) {
	type word struct{ hex, text, where string }
	var words []word
	seen := map[string]bool{}
	for _, name := range neonFiles {
		if !strings.HasSuffix(name, ".s") {
			continue
		}
		f, err := os.Open(filepath.Join("..", "runtime", name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			m := wordLine.FindStringSubmatch(sc.Text())
			if m == nil {
				if strings.Contains(sc.Text(), "WORD") {
					t.Errorf("%s:%d: WORD line without its instruction: %q", name, n, sc.Text())
				}
				continue
			}
			if !seen[m[1]+m[2]] {
				seen[m[1]+m[2]] = true
				words = append(words, word{m[1], m[2], fmt.Sprintf("%s:%d", name, n)})
			}
		}
		f.Close()
	}
	if len(words) == 0 {
		t.Fatal("no WORD lines in the NEON kernels")
	}
	var in strings.Builder
	for _, w := range words {
		in.WriteString(w.text + "\n")
	}
	cmd := exec.Command(llvmMC(t), "-triple=aarch64", "-mattr=+neon", "-show-encoding")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("llvm-mc: %v\n%s", err, out)
	}
	// Each instruction prints as "\tfmla\tv0.4s, ... // encoding: [0xa0,0x10,0x84,0x4f]".
	enc := regexp.MustCompile(`encoding: \[0x([0-9a-f]{2}),0x([0-9a-f]{2}),0x([0-9a-f]{2}),0x([0-9a-f]{2})\]`)
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		if m := enc.FindStringSubmatch(line); m != nil {
			got = append(got, m[4]+m[3]+m[2]+m[1]) // little-endian bytes
		}
	}
	if len(got) != len(words) {
		t.Fatalf("llvm-mc encoded %d instructions, want %d:\n%s", len(got), len(words), out)
	}
	for i, w := range words {
		if got[i] != w.hex {
			t.Errorf("%s: %s is 0x%s, llvm-mc says 0x%s", w.where, w.text, w.hex, got[i])
		}
	}
	t.Logf("%d distinct encodings checked", len(words))
}

// neonFMAShare returns, per function of a generated NEON assembly file, the
// FMA instructions and all instructions of the inner loop that starts at
// label and ends with its BNE (the loop branch included).
func neonFMAShare(t *testing.T, file, label string) map[string][2]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "runtime", file))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int{}
	for _, fn := range strings.Split(string(b), "\nTEXT ·")[1:] {
		name := fn[:strings.IndexByte(fn, '(')]
		_, body, ok := strings.Cut(fn, "\n"+label+":\n")
		if !ok {
			t.Fatalf("%s: %s has no loop %s", file, name, label)
		}
		body, _, _ = strings.Cut(body, "BNE "+label)
		fma, all := 0, 1
		for _, l := range strings.Split(body, "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasSuffix(l, ":") {
				continue
			}
			all++
			if strings.HasPrefix(l, "VFMLA") || strings.Contains(l, "// fmla") {
				fma++
			}
		}
		out[name] = [2]int{fma, all}
	}
	return out
}

// TestNEONFMAShare reports the FMA share of every NEON kernel's inner loop
// (go test -v -run NEONFMAShare ./asm/) and holds the full-size GEMM tile
// to at least 80%.
func TestNEONFMAShare(t *testing.T) {
	for _, k := range []struct{ file, label string }{{"zgemm_neon_arm64.s", "k4"}, {"zdw_neon_arm64.s", "vecq"}, {"zdw_neon_arm64.s", "vec"}} {
		shares := neonFMAShare(t, k.file, k.label)
		var names []string
		for n := range shares {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			s := shares[n]
			t.Logf("%-12s inner loop %-4s %3d FMA of %3d instructions: %.1f%%", n, k.label, s[0], s[1], 100*float64(s[0])/float64(s[1]))
		}
	}
	g := neonFMAShare(t, "zgemm_neon_arm64.s", "k4")["gemmNEONm5"]
	if share := float64(g[0]) / float64(g[1]); share < 0.8 {
		t.Errorf("gemmNEONm5: FMA share of the inner loop %.1f%%, want at least 80%%", 100*share)
	}
}
