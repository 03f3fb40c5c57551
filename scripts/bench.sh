#!/usr/bin/env bash
# make bench: compiled pnas programs vs ONNX Runtime on the reference models
# of ../shared/bench/ortanchor, interleaved, batch 1, 1 and 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT=.cache/ortanchor
SRC=${PNAS_ORTANCHOR:-../shared/bench/ortanchor}
if [ ! -d "$ORT/node_modules/onnxruntime-node" ]; then
	command -v node >/dev/null || { echo "bench: node is needed (apt-get install nodejs npm)"; exit 1; }
	mkdir -p "$ORT"
	cp "$SRC"/*.js "$SRC"/package.json "$ORT"/
	(cd "$ORT" && ONNXRUNTIME_NODE_INSTALL=skip npm install --silent)
fi
if [ ! -f "$ORT/models/mobilenetv2_224.ref_output.bin" ]; then
	(cd "$ORT" && node build_models.js >/dev/null && node bench.js --ref --models mobilenetv2_224,mbconv_fmnist28 --threads 1 --batches 1 --runs 1 --min-time 0 >/dev/null)
fi
# this machine's register-only FMA peak per core, for the "of peak" column
if [ ! -x "$ORT/peak_avx512" ] && command -v gcc >/dev/null; then
	gcc -O3 -mavx512f -mfma "$SRC/peak.c" -o "$ORT/peak_avx512" -lpthread 2>/dev/null || true
fi
PEAK=""
if [ -x "$ORT/peak_avx512" ]; then
	out=$("$ORT/peak_avx512" 1 0.3 5 || true)
	a2=$(echo "$out" | awk '/AVX2\+FMA/ {print $(NF-3)}')
	a5=$(echo "$out" | awk '/AVX-512F/ {print $(NF-3)}')
	sc=$(echo "$out" | awk '/scalar FMA/ {print $(NF-3)}')
	PEAK="avx512=${a5:-0},avx2=${a2:-0},go=${sc:-0}"
	echo "peak per core (GFLOP/s): $PEAK"
fi
go run ./internal/cmd/perfcmp -peak "$PEAK" -ort "$ORT" -pnas bin/pnas -work out/bench -passes "${PASSES:-3}" -json out/bench/results.json
