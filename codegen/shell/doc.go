// Package shell is the hand-written part of every program that pnas
// compile generates: flag parsing, input decoding (PNG, JPEG, IDX, .npy,
// raw float32), top-k printing, the -bench timing loop and its JSON
// report, -eval (top-1 accuracy overall and per class over an IDX file
// with its labels, or a folder of class sub-folders), and the small
// helpers generated model code calls.
//
// The code generator copies its non-test files other than doc.go into the
// generated module, rewriting the package clause to main and the runtime
// import to the module's copy of the runtime; generated main.go and
// model.go supply the networks. Keeping the shell a real package lets it
// be compiled, vetted and unit-tested here.
//
// Package shell imports only package runtime and the standard library.
package shell
