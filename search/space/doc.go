// Package space describes ProxylessNAS search spaces as data.
//
// A [Space] is a plain Go value that also reads from and writes to JSON, so
// users can write their own: the input shape, a stem (3x3 convolution, BN,
// ReLU6), a fixed first inverted-residual block, stages of searchable layers
// (width, stride of the first layer, number of layers), a 1x1 head, global
// average pooling and a linear classifier, plus the candidate operations of
// every searchable layer. [Builtin] returns the spaces that ship with pnas
// ("fmnist", the default, and "imagenet-mobile", the paper's 21-layer mobile
// space). [Space.Validate] checks every field and names the field, the
// expected value and the value found. [Space.Plan] enumerates the layer
// positions (input and output sizes, stride, whether an identity residual is
// possible) from which latency-table keys and the supernet are built.
//
// The package owns the latency-table vocabulary: the key formats of the
// reference ProxylessNAS lookup table ([StemKey], [MBConvKey], [HeadKey],
// [LogitsKey]), their layer types ([KeyType]) and the keys of a plan
// ([Plan.StemKey], [Plan.FirstKey], [Plan.HeadKey], [Plan.LogitsKey],
// [Layer.Key]). Package internal/archnet builds a plan's IR networks and
// derives the same keys from their block annotations.
//
// Package space imports only the standard library.
package space
