//go:build !linux

package shell

// hugeFloats returns nil: transparent huge pages are asked for on Linux
// only (mem_linux.go), so the weights and arena come from the Go heap.
func hugeFloats(n int) []float32 { return nil }
