package runtime

// ThreadCPU exposes threadCPU to the external tests.
var ThreadCPU = threadCPU

// SetMBConvStrip fixes the output rows per strip of m (0: the default).
func SetMBConvStrip(m *MBConv, rows int) { m.fixedStrip = rows }

// SetDepthwiseStrips sets the strip size, the input size above which
// depthwise layers run in strips and the bound on one channel vector's
// pass (dwPassBytes); it returns a function restoring them.
func SetDepthwiseStrips(bytes, min, pass int) (restore func()) {
	b, m, ps := dwStripBytes, dwStripMin, dwPassBytes
	dwStripBytes, dwStripMin, dwPassBytes = bytes, min, pass
	return func() { dwStripBytes, dwStripMin, dwPassBytes = b, m, ps }
}

// SetSerialWork sets the work below which p's Parts gives one part (0:
// every task is split, so that small test cases run the threaded paths).
func SetSerialWork(p *Pool, work int64) { p.serial = work }

// SerialThreshold is the work below which a pool's Parts gives one part
// with the active kernels (serialFor).
func SerialThreshold() int64 { return serialFor(level()) }

// SetHalfWidth512 sets whether the CPU counts as one whose AVX-512 units
// have the AVX2 rate (gemmForShape); it returns a function restoring it.
func SetHalfWidth512(v bool) (restore func()) {
	old := halfWidth512
	halfWidth512 = v
	return func() { halfWidth512 = old }
}
