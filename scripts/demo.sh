#!/usr/bin/env bash
# make demo: the whole pnas loop on the built-in Fashion-MNIST space —
# profile the target, search, inspect, train, evaluate, compile, run,
# measure, calibrate — in a few minutes on 2 cores.
#
# With the full data set (Debian package dataset-fashion-mnist, which make
# demo installs when it can) the search runs on a 4,000-image slice of the
# training split and the derived network then trains on a 20,000-image
# slice; without it everything runs on the 2,000-image subset embedded in
# the repository, and the network ends less accurate. Either way the test
# images are the embedded 500-image test subset, which neither the search
# nor the training reads. docs/search-cli.md has the full-data command.
set -euo pipefail
cd "$(dirname "$0")/.."
PNAS=bin/pnas
OUT=${DEMO_OUT:-out/demo}
FMNIST=/usr/share/datasets/fashion-mnist
rm -rf "$OUT"
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# DEMO_DATA=subset runs on the embedded subset even when the full set is there.
if [ "${DEMO_DATA:-full}" != subset ] && [ -d "$FMNIST" ]; then
	DATA=fashion-mnist
	# search: the first 4,000 training images, 800 of them held out for the
	# architecture steps; train: the first 20,000, 1,000 held out to pick
	# the better epoch.
	SEARCH_DATA=(--train-limit 4000 --held-out 800)
	WARMUP=${DEMO_WARMUP:-1} EPOCHS=${DEMO_EPOCHS:-2} ARCH_EVERY=1
	TRAIN_DATA=(--train-limit 20000 --held-out 1000)
	TRAIN=${DEMO_TRAIN:-2} TRAIN_BATCH=64 TRAIN_LR=0.05
	echo "data: the full Fashion-MNIST training split in $FMNIST (slices of it)"
else
	DATA=fashion-mnist-subset
	# 1,800 training and 200 held-out images, for search and train alike.
	SEARCH_DATA=() TRAIN_DATA=()
	WARMUP=${DEMO_WARMUP:-4} EPOCHS=${DEMO_EPOCHS:-4} ARCH_EVERY=2
	TRAIN=${DEMO_TRAIN:-12} TRAIN_BATCH=32 TRAIN_LR=0.025
	if [ "${DEMO_DATA:-full}" = subset ]; then
		echo "data: the embedded 2,000-image subset (DEMO_DATA=subset)"
	else
		echo "data: $FMNIST is missing (apt-get install dataset-fashion-mnist), so the demo"
		echo "      runs on the embedded 2,000-image subset, and the network it finds ends"
		echo "      less accurate (README.md gives figures for both)."
	fi
fi

step "1. latency table: time every candidate of the fmnist space on this machine"
$PNAS profile --space fmnist -o "$OUT/lut.json" --dir "$OUT/profile" --runs 200

# The reference moves alpha with Adam at 1e-3 every 5 weight steps over 120
# epochs; the demo's architecture steps (the first search epoch has none;
# then one every ARCH_EVERY weight steps) are 10x larger and more frequent,
# so alpha moves visibly.
step "2. search (ProxylessNAS, binarized paths, latency loss) on $DATA"
$PNAS search --space fmnist --data "$DATA" "${SEARCH_DATA[@]}" --lut "$OUT/lut.json" \
	--warmup-epochs "$WARMUP" --epochs "$EPOCHS" --train-epochs 0 --batch 32 --arch-batch 32 \
	--arch-every "$ARCH_EVERY" --arch-lr 0.01 -o "$OUT/run"

step "3. the derived architecture"
$PNAS inspect "$OUT/run/model.json"

# The supernet trains each candidate only on the steps that sample it, so
# the derived network now trains alone, from the supernet's weights, with
# the reference recipe (augmentation, label smoothing, cosine learning rate).
step "4. train the derived network on $DATA"
$PNAS train "$OUT/run/model.json" --init --data "$DATA" "${TRAIN_DATA[@]}" \
	--epochs "$TRAIN" --warmup-epochs 0 --batch "$TRAIN_BATCH" --lr "$TRAIN_LR" -o "$OUT/train"
MODEL=$OUT/train/model.json

step "5. compile to a standalone program"
BIN=$($PNAS compile "$MODEL" -o "$OUT/model" | tail -n 1)
ls -l "$BIN"

# pnas eval without --binary runs the reference interpreter instead (the
# same answers, image for image, more slowly).
step "6. accuracy of the program on the test subset (search and training never saw these images)"
$PNAS eval "$MODEL" --binary "$BIN" --data fashion-mnist-subset --split test

step "7. run it on test images (and the true label of each)"
CLASSES=("T-shirt/top" Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag "Ankle boot")
gzip -dc data/fmnist/t10k-labels-idx1-ubyte.gz >"$OUT/test-labels"
for i in 0 1 2; do
	label=$(od -An -tu1 -j $((8 + i)) -N1 "$OUT/test-labels" | tr -d ' ')
	echo "test image $i, true label: $label ${CLASSES[$label]}"
	"$BIN" -input data/fmnist/t10k-images-idx3-ubyte.gz -index $i -k 3
done

step "8. the program measures itself, and the measurement refits the latency table"
"$BIN" -bench 300 -threads 1
$PNAS calibrate --table "$OUT/lut.json" --log "$OUT/measurements.jsonl" --run "$BIN" --run "$OUT/profile/model" --runs 200 -o "$OUT/lut-calibrated.json"

step "done"
cat <<MSG
pictures:   $OUT/run/arch.png (the architecture), $OUT/run/alpha.png and
            $OUT/run/alpha-logodds.png (the search), $OUT/run/latency-accuracy.png,
            $OUT/train/training.png (the training)
model:      $MODEL + model.safetensors ($(du -h "$OUT/train/model.safetensors" | cut -f1))
program:    $BIN ($(du -h "$BIN" | cut -f1), static, weights embedded)
MSG
