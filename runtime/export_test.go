package runtime

// ThreadCPU exposes threadCPU to the external tests.
var ThreadCPU = threadCPU
