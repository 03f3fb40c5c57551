//go:build (!amd64 && !arm64) || noasm || purego

package runtime

// detectLevel reports the portable Go level: this build has no assembly.
func detectLevel() int { return levelGo }
