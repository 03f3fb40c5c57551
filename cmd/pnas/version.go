package main

import (
	"fmt"
	"runtime/debug"
)

// version is set at link time by the Makefile (-X main.version=...).
var version = ""

// Version returns the pnas version: the linker-provided one, else the module
// version or VCS revision recorded by the Go toolchain.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Help gives examples.
func (VersionCmd) Help() string { return "Example:\n  pnas version" }

// Run prints the version.
func (VersionCmd) Run(g *globals) error {
	fmt.Fprintf(g.stdout, "pnas %s\n", Version())
	return nil
}
