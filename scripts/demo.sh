#!/usr/bin/env bash
# make demo: the whole pnas loop on the built-in Fashion-MNIST space —
# profile the target, search, inspect, evaluate, compile, run, measure,
# calibrate. Uses the embedded 2,000/500-image subset so it runs anywhere in
# a few minutes; docs/search.md has the full-data command.
set -euo pipefail
cd "$(dirname "$0")/.."
PNAS=bin/pnas
OUT=${DEMO_OUT:-out/demo}
EPOCHS=${DEMO_EPOCHS:-4}
WARMUP=${DEMO_WARMUP:-4}
TRAIN=${DEMO_TRAIN:-12}
rm -rf "$OUT"
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. latency table: time every candidate of the fmnist space on this machine"
$PNAS profile --space fmnist -o "$OUT/lut.json" --dir "$OUT/profile" --runs 200

# The reference moves alpha with Adam at 1e-3 every 5 weight steps over 120
# epochs; the demo's one epoch of architecture steps (the first search epoch
# has none) takes 10x larger steps, twice as often, so alpha moves visibly.
step "2. search (ProxylessNAS, binarized paths, latency loss) on the Fashion-MNIST subset"
$PNAS search --space fmnist --data fashion-mnist-subset --lut "$OUT/lut.json" \
	--warmup-epochs "$WARMUP" --epochs "$EPOCHS" --train-epochs "$TRAIN" --batch 32 --arch-batch 32 \
	--arch-every 2 --arch-lr 0.01 -o "$OUT/run"

step "3. the derived architecture"
$PNAS inspect "$OUT/run/model.json"

step "4. accuracy on the test subset (reference interpreter; search never saw these images)"
$PNAS eval "$OUT/run/model.json" --data fashion-mnist-subset --split test

step "5. compile to a standalone program"
BIN=$($PNAS compile "$OUT/run/model.json" -o "$OUT/model" | tail -n 1)
ls -l "$BIN"

step "6. run it on test images (and the true label of each)"
CLASSES=("T-shirt/top" Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag "Ankle boot")
gzip -dc data/fmnist/t10k-labels-idx1-ubyte.gz >"$OUT/test-labels"
for i in 0 1 2; do
	label=$(od -An -tu1 -j $((8 + i)) -N1 "$OUT/test-labels" | tr -d ' ')
	echo "test image $i, true label: $label ${CLASSES[$label]}"
	"$BIN" -input data/fmnist/t10k-images-idx3-ubyte.gz -index $i -k 3
done

step "7. the program measures itself, and the measurement refits the latency table"
"$BIN" -bench 300 -threads 1
$PNAS calibrate --table "$OUT/lut.json" --log "$OUT/measurements.jsonl" --run "$BIN" --run "$OUT/profile/model" --runs 200 -o "$OUT/lut-calibrated.json"

step "done"
cat <<MSG
pictures:   $OUT/run/arch.png (the architecture), $OUT/run/alpha.png (the search),
            $OUT/run/latency-accuracy.png
model:      $OUT/run/model.json + model.safetensors ($(du -h "$OUT/run/model.safetensors" | cut -f1))
program:    $BIN ($(du -h "$BIN" | cut -f1), static, weights embedded)
MSG
