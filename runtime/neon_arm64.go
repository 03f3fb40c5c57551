//go:build !noasm && !purego

package runtime

import "unsafe"

// unsafeAdd returns p advanced by n floats.
func unsafeAdd(p *float32, n int) *float32 {
	return (*float32)(unsafe.Add(unsafe.Pointer(p), 4*n))
}

// unsafeRow returns the n floats at p + off floats.
func unsafeRow(p *float32, off, n int) []float32 { return unsafe.Slice(unsafeAdd(p, off), n) }
