package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// This file reads the size of the CPU's caches, which the GEMM and MBConv
// drivers size their working sets by.

// l2Quarter is a quarter of the L2 cache per core, as Linux reports it
// for the first CPU, between 64 KiB and 1 MiB, and 512 KiB where it is
// unknown: the working set the MBConv strips (MBConvStripBytes) and the
// GEMM's blocks of A (gemmRun.plan) aim at.
var l2Quarter = sync.OnceValue(func() int {
	return l2QuarterFor(l2CacheBytes("/sys/devices/system/cpu/cpu0/cache"))
})

// l2QuarterFor is l2Quarter for an L2 cache of l2 bytes (0: unknown).
func l2QuarterFor(l2 int) int {
	if l2 <= 0 {
		return 512 << 10
	}
	return min(max(l2/4, 64<<10), 1<<20)
}

// l2CacheBytes reads the size of the level-2 data or unified cache from a
// Linux sysfs cache directory (index0, index1, ... each with level, type
// and size, such as "1024K"); 0 when there is none or it cannot be read.
func l2CacheBytes(dir string) int {
	for i := 0; i < 16; i++ {
		idx := fmt.Sprintf("%s/index%d/", dir, i)
		level, err := os.ReadFile(idx + "level")
		if err != nil {
			return 0
		}
		typ, _ := os.ReadFile(idx + "type")
		if strings.TrimSpace(string(level)) != "2" || strings.TrimSpace(string(typ)) == "Instruction" {
			continue
		}
		size, err := os.ReadFile(idx + "size")
		if err != nil {
			return 0
		}
		v := strings.TrimSpace(string(size))
		unit := 1
		switch {
		case strings.HasSuffix(v, "K"):
			unit, v = 1<<10, strings.TrimSuffix(v, "K")
		case strings.HasSuffix(v, "M"):
			unit, v = 1<<20, strings.TrimSuffix(v, "M")
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0
		}
		return n * unit
	}
	return 0
}
