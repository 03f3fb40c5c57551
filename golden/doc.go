// Package golden holds the golden tests of the compiler: IR cases under
// testdata and the exact generated sources expected for them. `go test
// ./golden -update` rewrites the golden files; every golden must also
// build.
package golden
