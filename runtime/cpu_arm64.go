//go:build !noasm && !purego

package runtime

// detectLevel picks NEON: every ARMv8-A CPU has Advanced SIMD.
func detectLevel() int { return levelNEON }
