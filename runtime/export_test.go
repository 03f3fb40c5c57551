package runtime

// ThreadCPU exposes threadCPU to the external tests.
var ThreadCPU = threadCPU

// SetMBConvStrip fixes the output rows per strip of m (0: the default).
func SetMBConvStrip(m *MBConv, rows int) { m.fixedStrip = rows }
