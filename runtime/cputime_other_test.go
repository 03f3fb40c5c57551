//go:build !linux

package runtime

import "time"

// threadCPU is unavailable off Linux; benchmarks then report wall time only.
func threadCPU() time.Duration { return 0 }
