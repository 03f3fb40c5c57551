package device

import (
	"debug/elf"
	"fmt"
	"strings"
)

// elfPlatform returns the GOOS/GOARCH of a Linux ELF program, or "" when
// the file is not one pnas builds (a script, another OS's binary).
func elfPlatform(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "linux/amd64"
	case elf.EM_AARCH64:
		return "linux/arm64"
	case elf.EM_386:
		return "linux/386"
	case elf.EM_ARM:
		return "linux/arm"
	case elf.EM_RISCV:
		return "linux/riscv64"
	}
	return ""
}

// unamePlatform maps `uname -sm` output to GOOS/GOARCH ("" if unknown).
func unamePlatform(s string) string {
	f := strings.Fields(s)
	if len(f) != 2 {
		return ""
	}
	goos := strings.ToLower(f[0])
	arch := map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
		"i686": "386", "i386": "386", "armv7l": "arm", "armv6l": "arm", "riscv64": "riscv64"}[f[1]]
	if arch == "" {
		return ""
	}
	return goos + "/" + arch
}

// checkPlatform fails when the program is built for another platform than
// the device's.
func checkPlatform(dev, prog, devPlatform string) error {
	want := elfPlatform(prog)
	if want == "" || devPlatform == "" || want == devPlatform {
		return nil
	}
	return fmt.Errorf("device %s runs %s, the program %s is for %s (compile it for a %s target)", dev, devPlatform, prog, want, devPlatform)
}
