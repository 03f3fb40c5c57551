package shell

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on linux/amd64 and
// linux/arm64 with 4 KiB base pages.
const hugePage = 2 << 20

// hugeFloats returns n zeroed floats in an anonymous mapping of their own,
// aligned to 2 MiB and advised for transparent huge pages (MADV_HUGEPAGE),
// or nil when the kernel refuses the mapping. Where the kernel's setting
// allows it ("always" or "madvise" in
// /sys/kernel/mm/transparent_hugepage/enabled), the weights of a 224x224
// network take 15 TLB entries instead of 7000: streamed from memory once
// per inference, as the wide 7x7 layers and the classifier do, they ran
// 3-7% faster and the classifier 0.7x as long on a Zen 4 (docs/perf.md).
// Elsewhere the advice has no effect. The mapping lives as long as the
// process.
func hugeFloats(n int) []float32 {
	size := (4*n + hugePage - 1) / hugePage * hugePage
	mem, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil
	}
	off := 0
	if r := uintptr(unsafe.Pointer(&mem[0])) % hugePage; r != 0 {
		off = int(hugePage - r)
	}
	mem = mem[off : off+size : off+size]
	_ = syscall.Madvise(mem, syscall.MADV_HUGEPAGE) // advice only: 4 KiB pages work too
	return unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), n)
}
