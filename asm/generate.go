//go:build generate

package asm

//go:generate go run -C=_gen github.com/pnasml/pnas/asm/_gen
