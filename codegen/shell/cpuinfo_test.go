package shell

import (
	goruntime "runtime"
	"strings"
	"testing"
)

// TestCPUModelFrom names x86 CPUs by model name and ARM cores (which have
// none in /proc/cpuinfo) by implementer and part.
func TestCPUModelFrom(t *testing.T) {
	pi5 := "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n" +
		"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\nprocessor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n"
	for _, c := range []struct{ in, want string }{
		{"processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R45\n", "AMD EPYC 9R45"},
		{pi5, "Arm Cortex-A76 (implementer 0x41 part 0xd0b)"},
		{strings.ReplaceAll(pi5, "0xd0b", "0xd0c"), "Arm Neoverse N1 (implementer 0x41 part 0xd0c)"},
		{"CPU implementer\t: 0x61\nCPU part\t: 0x022\n", goruntime.GOARCH + " implementer 0x61 part 0x022"},
		{"processor\t: 0\n", ""},
	} {
		if got := cpuModelFrom(strings.NewReader(c.in)); got != c.want {
			t.Errorf("cpuModelFrom(%.40q) = %q, want %q", c.in, got, c.want)
		}
	}
}
