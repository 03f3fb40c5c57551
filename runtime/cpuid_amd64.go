//go:build !noasm && !purego

package runtime

// cpuid executes CPUID with the given leaf and sub-leaf (cpuid_amd64.s).
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// xgetbv reads the extended control register XCR0 (cpuid_amd64.s).
func xgetbv() (eax, edx uint32)

func init() {
	// vendor string "GenuineIntel"
	_, ebx, ecx, edx := cpuid(0, 0)
	isIntel = ebx == 0x756e6547 && edx == 0x49656e69 && ecx == 0x6c65746e
	// "AuthenticAMD", family 19h: Zen 3, which has no AVX-512, and Zen 4,
	// which runs each 512-bit operation as two 256-bit halves.
	isAMD := ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163
	eax, _, _, _ := cpuid(1, 0)
	halfWidth512 = isAMD && cpuFamily(eax) == 0x19
}
