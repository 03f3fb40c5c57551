// Package pass holds the IR-to-IR passes of the pnas compiler as one
// named, ordered table, [Passes], in the style of the Go compiler's SSA
// pass list: each entry has a name, a function that rewrites an
// [ir.Model] in place, and whether it may be disabled. The ordering
// constraints between passes are data too and are checked when the
// package is initialised.
//
// [Apply] runs the table on a clone of a model (the input is never
// modified) and can verify the IR after every pass ([Options.Check]),
// print it after named passes ([Options.Dump], the `-d pass/<name>/dump`
// of `pnas compile`) and skip optional passes ([Options.Disable]).
// [Fprint] is the text form used by the dumps.
//
// Every pass preserves the model's function: the reference interpreter,
// package ir/interp, gives the same outputs before and after, up to
// float32 rounding. Surviving ops keep their block annotations and the
// model's output tensor keeps its name.
//
// Package pass imports only package ir and the standard library.
package pass
