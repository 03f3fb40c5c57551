// Package targets describes the hardware pnas compiles for and searches
// against, as data: name, GOOS/GOARCH/GOAMD64, instruction-set features,
// kernel set, default thread count, and the target's latency table and
// latency predictor. Users add their own devices as files.
//
// Package targets may import ir and the standard library.
package targets
