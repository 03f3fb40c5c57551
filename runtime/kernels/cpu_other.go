//go:build !amd64 || noasm || purego

package kernels

// detectLevel reports the portable Go level: this build has no assembly.
func detectLevel() int { return levelGo }
