package runtime

// ThreadCPU exposes threadCPU to the external tests.
var ThreadCPU = threadCPU

// SetMBConvStrip fixes the output rows per strip of m (0: the default).
func SetMBConvStrip(m *MBConv, rows int) { m.fixedStrip = rows }

// SetDepthwiseStrips sets the strip size and the input size above which
// depthwise layers run in strips; it returns a function restoring them.
func SetDepthwiseStrips(bytes, min int) (restore func()) {
	b, m := dwStripBytes, dwStripMin
	dwStripBytes, dwStripMin = bytes, min
	return func() { dwStripBytes, dwStripMin = b, m }
}
