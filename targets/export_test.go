package targets

// SupportsOn is Target.supports for tests: it checks the target against a
// fake host.
func SupportsOn(t *Target, goos, goarch string, has func(string) bool) error {
	return t.supports(goos, goarch, has)
}

// FindCUDADriver is findCUDADriver for tests.
var FindCUDADriver = findCUDADriver
