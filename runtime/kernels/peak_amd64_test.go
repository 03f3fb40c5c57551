//go:build amd64 && !noasm && !purego

package kernels

import "time"

// measurePeak returns the best GFLOP/s of a few runs of the set's
// register-only FMA loop, each about d long (0 for "go").
func measurePeak(set string, d time.Duration) float64 {
	var run func(int)
	var perIter float64
	switch set {
	case "avx2":
		run, perIter = peakFMAAVX2, 2*12*8
	case "avx512":
		run, perIter = peakFMAAVX512, 2*24*16
	default:
		return 0
	}
	iters := 1 << 16
	best := 0.0
	for rep := 0; rep < 5; rep++ {
		t := time.Now()
		run(iters)
		el := time.Since(t)
		if g := perIter * float64(iters) / el.Seconds() / 1e9; g > best {
			best = g
		}
		if el < d {
			iters = int(float64(iters) * float64(d) / float64(el+1))
		}
	}
	return best
}
