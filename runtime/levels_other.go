//go:build !arm64

package runtime

// archLevelNames names the kernel levels of amd64 (other architectures
// reach only level 0, "go").
var archLevelNames = [numLevels]string{"go", "avx2", "avx512"}
