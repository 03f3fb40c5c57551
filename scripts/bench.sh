#!/usr/bin/env bash
# make bench: compiled pnas programs vs ONNX Runtime on the reference models
# that bench/ort builds (28x28 MBConv net, MobileNetV2-224 and the three
# published ProxylessNAS nets), interleaved, batch 1, 1 and 2 threads, for
# every x86 target this CPU runs (amd64 = AVX2 always, amd64-avx512 when the
# CPU has AVX-512F). Everything it needs is in the repository; node_modules
# comes from npm (package-lock.json), the peak probe is built with gcc.
#
# Environment: PASSES (default 3), MODELS, EXTRA (pnas models timed in the
# same passes and compared with ONNX Runtime on the first of MODELS, e.g.
# EXTRA=fmnist=models/fmnist/model.json), THREADS (default 1,2), TARGETS
# (default: every x86 target this CPU runs), BASELINE (a second pnas binary
# timed alongside, for before/after figures), PEAK (e.g.
# "avx2=112.8,avx512=160,go=14.5" to skip the probe, whose best-of-15
# repetitions still read low while other processes keep the cores busy),
# ORT_AVX2 (default 1: on an AVX-512 CPU that can fault on CPUID, also time
# ONNX Runtime with AVX-512 hidden, bench/ort/avx2only.c, and compare the
# AVX2 target with that; 0: native ONNX Runtime only), INTERLEAVE (blocks,
# the default: the engines run side by side and take turns in blocks of
# about 100 ms; passes: each pass runs every engine's process in turn).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=bench/ort
OUT=out/bench
MODELS_DIR=$OUT/models
command -v node >/dev/null && command -v npm >/dev/null || {
	echo "bench: node and npm are needed (apt-get install nodejs npm)" >&2
	exit 1
}
if [ ! -d "$HARNESS/node_modules/onnxruntime-node" ]; then
	# the CPU libraries ship in the npm package; "skip" stops its postinstall
	# from fetching the CUDA provider, which the CPU benchmark does not use
	(cd "$HARNESS" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --silent)
fi
mkdir -p "$MODELS_DIR"
stamp=$MODELS_DIR/.built
if [ ! -f "$stamp" ] || [ "$HARNESS/build_models.js" -nt "$stamp" ] || [ "$HARNESS/bench.js" -nt "$stamp" ]; then
	models=$(cd "$MODELS_DIR" && pwd)
	(cd "$HARNESS" && node build_models.js --out "$models" >/dev/null &&
		node bench.js --dir "$models" --ref --models mbconv_fmnist28,mobilenetv2_224,proxyless_mobile,proxyless_gpu,proxyless_cpu \
			--threads 1 --batches 1 --runs 1 --min-time 0 --quiet-wait 0 --attempts 1 >/dev/null)
	touch "$stamp"
fi

# this machine's register-only FMA peak per core for each kernel set it has
avx512=0
grep -qw avx512f /proc/cpuinfo 2>/dev/null && avx512=1
PEAK=${PEAK:-}
if [ -n "$PEAK" ]; then
	echo "peak per core (GFLOP/s, given): $PEAK" >&2
elif command -v gcc >/dev/null; then
	flags="-mavx2 -mfma"
	[ $avx512 = 1 ] && flags="-mavx512f -mfma"
	if [ ! -x "$OUT/peak" ] || [ "$HARNESS/peak.c" -nt "$OUT/peak" ]; then
		gcc -O3 $flags "$HARNESS/peak.c" -o "$OUT/peak" -lpthread
	fi
	out=$("$OUT/peak" 1 0.2 15)
	echo "$out" >&2
	a2=$(echo "$out" | awk '/AVX2\+FMA/ {print $(NF-3)}')
	a5=$(echo "$out" | awk '/AVX-512F/ {print $(NF-3)}')
	sc=$(echo "$out" | awk '/scalar FMA/ {print $(NF-3)}')
	PEAK="avx2=${a2},go=${sc}"
	[ -n "$a5" ] && PEAK="$PEAK,avx512=${a5}"
	echo "peak per core (GFLOP/s): $PEAK" >&2
else
	echo "bench: no gcc, so no peak probe: the \"of peak\" column stays n/a" >&2
fi
TARGETS=${TARGETS:-amd64$([ $avx512 = 1 ] && echo ,amd64-avx512)}
# ONNX Runtime's AVX2 kernels for the AVX2 target's rows (on a CPU without
# AVX-512 ONNX Runtime uses them anyway)
ortavx2=""
if [ $avx512 = 1 ] && [ "${ORT_AVX2:-1}" != 0 ]; then
	if ! command -v gcc >/dev/null; then
		echo "bench: no gcc: ONNX Runtime is timed with AVX-512 only, also for the AVX2 target" >&2
	elif ! grep -qw cpuid_fault /proc/cpuinfo; then
		echo "bench: no CPUID faulting here (cpuid_fault): ONNX Runtime is timed with AVX-512 only, also for the AVX2 target" >&2
	else
		if [ ! -f "$OUT/avx2only.so" ] || [ "$HARNESS/avx2only.c" -nt "$OUT/avx2only.so" ]; then
			gcc -O2 -shared -fPIC "$HARNESS/avx2only.c" -o "$OUT/avx2only.so" -ldl
		fi
		ortavx2=$(cd "$OUT" && pwd)/avx2only.so
	fi
fi
go run ./internal/cmd/perfcmp ${BASELINE:+-baseline "$BASELINE"} ${EXTRA:+-extra "$EXTRA"} ${ortavx2:+-ort-avx2 "$ortavx2"} -peak "$PEAK" -harness "$HARNESS" -models-dir "$MODELS_DIR" -pnas bin/pnas \
	-work "$OUT" -targets "$TARGETS" -threads "${THREADS:-1,2}" -interleave "${INTERLEAVE:-blocks}" \
	${MODELS:+-models "$MODELS"} -passes "${PASSES:-3}" -json "$OUT/results.json"
