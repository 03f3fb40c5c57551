package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checker prints CPUID leaf 7's feature words before and after installing
// a SIGSEGV handler of its own, then faults on purpose: the handler must
// be the program's.
const checker = `
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static void leaf7(void) {
	unsigned a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
	printf("%08x %08x %08x\n", b, c, d);
}
static void own(int sig) { (void)sig; printf("own handler\n"); fflush(stdout); _exit(0); }
int main(void) {
	leaf7();
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = own;
	sigaction(SIGSEGV, &sa, NULL);
	leaf7();
	fflush(stdout);
	*(volatile int *)0 = 1;
	return 1;
}
`

// TestAVX2OnlyHidesAVX512 builds bench/ort/avx2only.c and checks on this
// CPU that a process it is loaded into sees every CPUID feature bit but the
// AVX-512 and AMX ones, and that the process's own SIGSEGV handler still
// gets its faults.
func TestAVX2OnlyHidesAVX512(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc: make bench builds the library with it")
	}
	if b, _ := os.ReadFile("/proc/cpuinfo"); !bytes.Contains(b, []byte(" cpuid_fault")) {
		t.Skip("this CPU or kernel cannot fault on CPUID (no cpuid_fault in /proc/cpuinfo); make bench then times ONNX Runtime natively only")
	}
	dir := t.TempDir()
	lib, prog := filepath.Join(dir, "avx2only.so"), filepath.Join(dir, "checker")
	if out, err := exec.Command(gcc, "-Wall", "-Werror", "-O2", "-shared", "-fPIC", "../../../bench/ort/avx2only.c", "-o", lib, "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("building avx2only.so: %v\n%s", err, out)
	}
	if err := os.WriteFile(prog+".c", []byte(checker), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-O2", prog+".c", "-o", prog).CombinedOutput(); err != nil {
		t.Fatalf("building the checker: %v\n%s", err, out)
	}
	run := func(preload string) [][3]uint32 {
		cmd := exec.Command(prog)
		if preload != "" {
			cmd.Env = append(os.Environ(), "LD_PRELOAD="+preload)
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("checker (LD_PRELOAD=%q): %v\n%s", preload, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 3 || lines[2] != "own handler" {
			t.Fatalf("checker (LD_PRELOAD=%q) printed %q; want two CPUID lines and \"own handler\"", preload, out)
		}
		var words [][3]uint32
		for _, l := range lines[:2] {
			var w [3]uint32
			if _, err := fmt.Sscanf(l, "%x %x %x", &w[0], &w[1], &w[2]); err != nil {
				t.Fatalf("checker line %q: %v", l, err)
			}
			words = append(words, w)
		}
		return words
	}
	native, hidden := run(""), run(lib)
	// leaf 7 EBX, ECX, EDX bits of AVX-512 and AMX
	avx512 := [3]uint32{
		1<<16 | 1<<17 | 1<<21 | 1<<26 | 1<<27 | 1<<28 | 1<<30 | 1<<31,
		1<<1 | 1<<6 | 1<<11 | 1<<12 | 1<<14,
		1<<2 | 1<<3 | 1<<8 | 1<<22 | 1<<23 | 1<<24 | 1<<25,
	}
	const avx2 = 1 << 5 // leaf 7 EBX
	for i, h := range hidden {
		for r := range 3 {
			if h[r]&avx512[r] != 0 {
				t.Errorf("call %d, register %d: %08x still has AVX-512 bits %08x", i+1, r, h[r], h[r]&avx512[r])
			}
			if h[r] != native[0][r]&^avx512[r] {
				t.Errorf("call %d, register %d: %08x, want the native %08x without AVX-512 (%08x)", i+1, r, h[r], native[0][r], native[0][r]&^avx512[r])
			}
		}
	}
	if native[0][0]&avx2 != 0 && hidden[0][0]&avx2 == 0 {
		t.Error("AVX2 hidden too")
	}
	t.Logf("leaf 7 native %08x, with avx2only %08x", native[0], hidden[0])
}

func TestHidesAVX512(t *testing.T) {
	for tg, want := range map[string]bool{"amd64": true, "amd64" + baselineSuffix: true, "amd64-avx512": false, "amd64-avx512" + baselineSuffix: false} {
		if got := hidesAVX512(tg); got != want {
			t.Errorf("hidesAVX512(%q) = %v, want %v", tg, got, want)
		}
	}
}
