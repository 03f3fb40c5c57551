//go:build xla

package search

import "github.com/gomlx/gomlx/backends/xla"

// A build with the xla tag compiles in GoMLX's XLA/PJRT backend ("xla",
// with the aliases "stablehlo", "hlo", "shlo"; it needs cgo). Its plugins
// are never downloaded: the PJRT plugin must be installed, found through
// PJRT_PLUGIN_LIBRARY_PATH or given as an absolute path (--backend
// xla:/path/to/pjrt_c_api_cpu_plugin.so).
func init() {
	xla.EnableAutoInstall(false)
}
