#!/usr/bin/env bash
# gpu-check.sh: the device check of the CUDA target (docs/cuda.md).
#
#   scripts/gpu-check.sh build [DIR]  on any machine with Go: builds the CUDA
#                                     programs of the 28x28 net and of
#                                     MobileNetV2-224, their inputs, the
#                                     interpreter's reference outputs and the
#                                     checker into DIR (default out/gpu-check)
#   scripts/gpu-check.sh run [DIR]    on a machine with an NVIDIA GPU and its
#                                     driver (DIR copied there; no Go needed):
#                                     compares the programs' outputs with the
#                                     reference (<= 1e-4 relative) and prints
#                                     batch-1 and batch-64 latency and, at
#                                     batch 64, each layer class's share of
#                                     the roofline
#   scripts/gpu-check.sh emulate [DIR] after build, on any machine: runs the
#                                     same kernels in the emulator (first
#                                     sample) and compares them the same way
#   scripts/gpu-check.sh [DIR]        build and run, on a machine with Go and
#                                     a GPU
set -euo pipefail
mode=all
case "${1:-}" in build | run | emulate) mode=$1; shift ;; esac
DIR=$(realpath -m "${1:-out/gpu-check}")
NETS="fmnist28 mobilenetv2-224"

build() {
	cd "$(dirname "$0")/.."
	CGO_ENABLED=0 go build -o "$DIR/gpucheck" ./internal/cmd/gpucheck
	"$DIR/gpucheck" -prepare -dir "$DIR"
	echo "built $DIR; on the GPU machine: scripts/gpu-check.sh run $DIR (copy scripts/gpu-check.sh along)"
}

run() {
	for n in $NETS; do
		"$DIR/$n/model" -input "$DIR/$n/input.bin" -dump-output "$DIR/$n/out.bin" -batch 4
	done
	"$DIR/gpucheck" -compare -dir "$DIR"
	printf '%-16s %6s %14s %14s\n' net batch "median (us)" "eager (us)"
	for n in $NETS; do
		for b in 1 64; do
			"$DIR/$n/model" -bench 200 -warmup 20 -batch "$b" -json > "$DIR/$n/bench-b$b.json"
			out=$("$DIR/$n/model" -bench 200 -warmup 20 -batch "$b")
			graph=$(echo "$out" | awk '$1 == "total" && $2 != "(eager)" {print $2}')
			eager=$(echo "$out" | awk '$1 == "total" && $2 == "(eager)" {print $3}')
			printf '%-16s %6d %14s %14s\n' "$n" "$b" "$graph" "$eager"
		done
	done
	"$DIR/gpucheck" -roofline 64 -dir "$DIR"
}

case $mode in
build) build ;;
emulate) "$DIR/gpucheck" -emulate -dir "$DIR" ;;
run) run ;;
all) (build) && run ;;
esac
