// Package data owns the labelled image data sets that pnas trains, searches
// and evaluates on: the Dataset type (uint8 pixels in CHW order plus uint8
// labels and class names), the loaders for Fashion-MNIST (IDX files, raw or
// gzip), CIFAR-10 (binary batches) and image folders (one sub-folder per
// class, PNG or JPEG, resized bilinearly), the user-facing spec strings
// resolved by Open, the deterministic stratified hold-out split used for
// architecture steps and model selection, and the conversion of images to
// normalised, optionally augmented float32 NCHW batches.
//
// A small stratified subset of Fashion-MNIST (2,000 training and 500 test
// images) is committed under fmnist/ and embedded with go:embed, so tests,
// examples and quick searches work on a machine without the full data set.
// fmnist/gen.go regenerates it from the full set; docs/data.md records how.
//
// Imports: the standard library and internal/atomicfile (WriteIDX writes
// all-or-nothing). golang.org/x/image is allowed should resizing or decoding
// ever need more than the standard library offers, but nothing else; a test
// enforces this.
//
// Data loading is its own package because two independent stages read it:
// search trains the supernet on it and the CLI's eval measures compiled
// models against it. Keeping it apart from search lets eval load data
// without pulling in GoMLX, and the compiled inference runtime never imports
// it at all, so generated programs stay free of data-set code.
package data
