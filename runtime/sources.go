package runtime

import "embed"

// Sources holds this package's own source files, so that the code generator
// can copy the files a program needs (KernelFiles) wherever pnas is
// installed, without the source tree.
//
//go:embed *.go *.s
var Sources embed.FS
