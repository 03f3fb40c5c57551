package cudashell

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testProgram() *program {
	return &program{target: "cuda", kernelSet: "cuda", ptx: map[string]string{},
		nets: []*network{{name: "tiny", id: "0123456789abcdef", inC: 1, inH: 2, inW: 2, outputs: 3, arenaFloats: 64},
			{name: "big", id: "fedcba9876543210", inC: 3, inH: 224, inW: 224, outputs: 1000, arenaFloats: 1 << 20}}}
}

// TestNoDriver checks the one line and exit status 1 of a program on a
// machine without the CUDA driver, and that bad flags and inputs are
// reported (status 2) before the driver is needed.
func TestNoDriver(t *testing.T) {
	noLib := loader{open: func(string) (uintptr, error) { return 0, errors.New("libcuda.so.1: cannot open shared object file") }}
	o := &options{bench: 3, batch: 1, k: 5, progName: "model"}
	if err := execute(o, &bytes.Buffer{}, &bytes.Buffer{}, testProgram(), noLib); err != errNoDriver {
		t.Errorf("without libcuda: got %v, expected %v", err, errNoDriver)
	}

	runProg := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb, testProgram())
		return code, out.String(), errb.String()
	}
	code, _, stderr := runProg("-bench", "3", "-threads", "8")
	if _, err := system.open("libcuda.so.1"); err != nil {
		// no driver on this machine: the real loader fails the same way
		if code != 1 || stderr != "model: no CUDA driver: libcuda.so.1 not found\n" {
			t.Errorf("without libcuda: status %d, stderr %q", code, stderr)
		}
	} else if code != 1 || strings.Count(stderr, "\n") != 1 {
		// a driver: the test program has no kernels, so loading fails,
		// on one line
		t.Errorf("with libcuda: status %d, stderr %q; expected status 1 and one line", code, stderr)
	}

	bin := filepath.Join(t.TempDir(), "x.bin")
	if err := os.WriteFile(bin, make([]byte, 12), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-bench", "1", "-batch", "0"}, "-batch: expected 1 to 65536, got 0"},
		{[]string{"-input", bin}, "expected 16 bytes"},
		{[]string{"-bench", "1", "-batch", "65536", "-model", "big"}, "-batch 65536: the activations of 65536 samples of big exceed the 2^31 floats"},
		{[]string{"-input", filepath.Join(t.TempDir(), "missing.png")}, "no such file"},
	} {
		code, _, stderr := runProg(c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: status %d, stderr %q; expected status 2 and %q", c.args, code, stderr, c.want)
		}
	}
	code, stdout, _ := runProg("-list")
	if code != 0 || stdout != "tiny\t0123456789abcdef\t1x2x2 -> 3\nbig\tfedcba9876543210\t3x224x224 -> 1000\n" {
		t.Errorf("-list: status %d, %q", code, stdout)
	}
}
