//go:build !amd64 || noasm || purego

package kernels

import "time"

// measurePeak has no probe in this build.
func measurePeak(string, time.Duration) float64 { return 0 }

func peakGFLOPS(string) float64 { return 0 }
