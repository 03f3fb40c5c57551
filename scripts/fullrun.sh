#!/usr/bin/env bash
# make fullrun: the full Fashion-MNIST pipeline of docs/search.md ("The full
# run") in one resumable command: profile the target, one search per latency
# target on the 55,000/5,000 split, random and uniform baselines of the same
# space, training of every network with the same recipe, the Pareto plot on
# the 10,000 test images, and the shipped model compiled and evaluated with
# its own program.
#
# Every stage is skipped when its output exists, and a search or training
# interrupted (Ctrl-C, a reboot) resumes from its last checkpoint when the
# same command runs again, ending bit-identical to an uninterrupted run.
# Wall and CPU seconds of every stage go to $OUT/stages.jsonl.
#
# The scale is set by environment variables; the defaults are the documented
# reference scale. docs/search.md has the scale the committed model used.
set -euo pipefail
cd "$(dirname "$0")/.."

PNAS=${PNAS:-bin/pnas}
OUT=${FULLRUN_OUT:-runs/fullrun}
DATA=${DATA:-fashion-mnist}
LATENCY_TARGETS=${LATENCY_TARGETS:-"200us 300us 400us"}
SHIP=${SHIP:-}                   # latency target whose searched net is shipped (default: the middle one)
SEARCH_WARMUP=${SEARCH_WARMUP:-5}
SEARCH_EPOCHS=${SEARCH_EPOCHS:-15}
SEARCH_LIMIT=${SEARCH_LIMIT:-0}  # training images the search uses (0 = all 60,000: 55,000 + 5,000 held out)
TRAIN_EPOCHS=${TRAIN_EPOCHS:-30}
TRAIN_LIMIT=${TRAIN_LIMIT:-0}    # training images pnas train uses (0 = all)
RANDOM_N=${RANDOM_N:-0}           # random architectures of the space, any latency
RANDOM_AT=${RANDOM_AT:-2}         # random architectures per latency target, predicted latency within RANDOM_TOL of it
RANDOM_TOL=${RANDOM_TOL:-0.1}
UNIFORM=${UNIFORM:-k3e3,k3e6,k7e6}
SEED=${SEED:-1}
SHIP_EPOCHS=${SHIP_EPOCHS:-0}    # > 0: the shipped architecture is trained again on the whole split for this many epochs
SHIP_FLAGS=${SHIP_FLAGS:-}       # more pnas train flags for that training
# more pnas search flags: by default the target is a budget (add#hinge: no
# latency pressure below it; budget: the most probable network within 10%
# below it); add e.g. "--arch-lr 0.01 --arch-every 2" for a short schedule
SEARCH_FLAGS=${SEARCH_FLAGS-"--loss add#hinge --loss-lambda 5 --derive budget"}
TRAIN_FLAGS=${TRAIN_FLAGS:-}     # more pnas train flags
PARETO_SEEDS=${PARETO_SEEDS:-1} # trainings of every compared network (seeds SEED, SEED+1, ...); the Pareto plot has their mean
SEARCH_ONCE=${SEARCH_ONCE:-0}    # 1: search at the first target only and pnas derive the others (needs --loss none: alpha then does not depend on the target)
if [ -z "${TARGET:-}" ]; then
	if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then TARGET=amd64-avx512; else TARGET=amd64; fi
fi

if [ ! -x "$PNAS" ]; then
	echo "fullrun: $PNAS not found; run make build first" >&2
	exit 1
fi
if [ "$DATA" = fashion-mnist ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
	echo "fullrun: the full data set is not installed (Debian package dataset-fashion-mnist," >&2
	echo "         /usr/share/datasets/fashion-mnist); make deps-data installs it" >&2
	exit 1
fi
mkdir -p "$OUT"
read -r -a TS <<<"$LATENCY_TARGETS"
if [ -z "$SHIP" ]; then SHIP=${TS[$((${#TS[@]} / 2))]}; fi

# settings of this run, kept beside the results (and checked on a rerun, so a
# resumed run cannot silently mix two scales)
settings="target=$TARGET data=$DATA latency_targets=$LATENCY_TARGETS ship=$SHIP search_warmup=$SEARCH_WARMUP search_epochs=$SEARCH_EPOCHS search_limit=$SEARCH_LIMIT train_epochs=$TRAIN_EPOCHS train_limit=$TRAIN_LIMIT random=$RANDOM_N uniform=$UNIFORM seed=$SEED ship_epochs=$SHIP_EPOCHS search_flags=$SEARCH_FLAGS train_flags=$TRAIN_FLAGS"
# settings added later are recorded only when set, so that runs started
# before them still match
if [ "$RANDOM_AT" != 0 ]; then settings="$settings random_at=$RANDOM_AT random_tol=$RANDOM_TOL"; fi
if [ -n "$SHIP_FLAGS" ]; then settings="$settings ship_flags=$SHIP_FLAGS"; fi
if ! [[ "$PARETO_SEEDS" =~ ^[1-9][0-9]*$ ]]; then
	echo "fullrun: PARETO_SEEDS: expected a positive number, got \"$PARETO_SEEDS\"" >&2
	exit 1
fi
if [ "$PARETO_SEEDS" != 1 ]; then settings="$settings pareto_seeds=$PARETO_SEEDS"; fi
if [ "$SEARCH_ONCE" != 0 ]; then
	case " $SEARCH_FLAGS " in
	*" --loss none "*) ;;
	*)
		echo "fullrun: SEARCH_ONCE=1 needs --loss none in SEARCH_FLAGS (with a latency loss, alpha depends on the target)" >&2
		exit 1
		;;
	esac
	settings="$settings search_once=$SEARCH_ONCE"
fi
if [ -f "$OUT/settings.txt" ]; then
	if [ "$(cat "$OUT/settings.txt")" != "$settings" ]; then
		echo "fullrun: $OUT was started with other settings:" >&2
		echo "  was: $(cat "$OUT/settings.txt")" >&2
		echo "  now: $settings" >&2
		echo "use another FULLRUN_OUT, or remove $OUT to start again" >&2
		exit 1
	fi
else
	echo "$settings" >"$OUT/settings.txt"
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# children_cpu: user + system seconds of the finished child processes so far.
# (times runs in this shell: in a subshell it would not see them)
children_cpu() {
	times >"$OUT/.times"
	tail -n 1 "$OUT/.times" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }; printf "%.2f", t }' >"$OUT/.cpu"
}

# stage NAME DONE CMD...: runs CMD unless DONE exists; appends NAME's wall and
# CPU seconds (user + system, children included) to stages.jsonl.
stage() {
	local name=$1 done=$2
	shift 2
	if [ -e "$done" ]; then
		echo "fullrun: $name done ($done)"
		return
	fi
	step "$name"
	local w0 c0 w1 c1
	w0=$(date +%s.%N)
	children_cpu
	c0=$(cat "$OUT/.cpu")
	"$@"
	w1=$(date +%s.%N)
	children_cpu
	c1=$(cat "$OUT/.cpu")
	printf '{"stage":"%s","wall_s":%.1f,"cpu_s":%.1f,"load":"%s","at":"%s"}\n' "$name" \
		"$(awk "BEGIN { print $w1 - $w0 }")" "$(awk "BEGIN { print $c1 - $c0 }")" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%FT%TZ)" >>"$OUT/stages.jsonl"
}

# resumable RUNDIR: "--resume RUNDIR" when RUNDIR holds a checkpoint; a
# directory left without one (stopped before its first checkpoint) is removed.
resume_or_fresh() {
	local dir=$1
	if [ -f "$dir/checkpoint.bin" ]; then
		echo "--resume $dir"
	elif [ -d "$dir" ]; then
		rm -rf "$dir"
	fi
}

search() {
	local t=$1 dir=$OUT/search-$1 r
	r=$(resume_or_fresh "$dir")
	if [ -n "$r" ]; then
		# shellcheck disable=SC2086
		$PNAS search $r
	else
		# shellcheck disable=SC2086 # SEARCH_FLAGS is a list of flags
		$PNAS search --space fmnist --data "$DATA" --train-limit "$SEARCH_LIMIT" --target "$TARGET" \
			--lut "$OUT/lut.json" --latency-target "$t" --warmup-epochs "$SEARCH_WARMUP" \
			--epochs "$SEARCH_EPOCHS" --train-epochs 0 --seed "$SEED" $SEARCH_FLAGS -o "$dir"
	fi
}

train() {
	local model=$1 dir=$2 limit=${3:-$TRAIN_LIMIT} epochs=${4:-$TRAIN_EPOCHS} flags=${5:-$TRAIN_FLAGS} seed=${6:-$SEED} r
	r=$(resume_or_fresh "$dir")
	if [ -n "$r" ]; then
		# shellcheck disable=SC2086
		$PNAS train $r
	else
		# shellcheck disable=SC2086 # flags is a list of flags
		$PNAS train "$model" --data "$DATA" --train-limit "$limit" --epochs "$epochs" \
			--seed "$seed" $flags -o "$dir"
	fi
}

# 1. the latency table of the target, measured on this machine
stage profile "$OUT/lut.json" $PNAS profile --space fmnist --target "$TARGET" -o "$OUT/lut.json" --dir "$OUT/profile"

# derive_at T: the network of budget T read off the first target's search
derive_at() {
	local dir=$OUT/search-$1
	rm -rf "$dir.tmp"
	$PNAS derive "$OUT/search-${TS[0]}" --latency-target "$1" --lut "$OUT/lut.json" -o "$dir.tmp"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
}

# 2. one search per latency target (the test split is never read); with
#    SEARCH_ONCE=1 one search and a derivation per other target
for t in "${TS[@]}"; do
	if [ "$SEARCH_ONCE" != 0 ] && [ "$t" != "${TS[0]}" ]; then
		stage "derive $t" "$OUT/search-$t/model.json" derive_at "$t"
	else
		stage "search $t" "$OUT/search-$t/model.json" search "$t"
	fi
done

# 3. baselines of the same space, with fresh weights: uniform nets, random
#    nets of any latency, and random nets at each target's latency
baselines() {
	local args=()
	if [ "$RANDOM_N" -gt 0 ]; then args+=(-n "$RANDOM_N"); fi
	if [ -n "$UNIFORM" ]; then args+=(--uniform "$UNIFORM"); fi
	rm -rf "$OUT/nets.tmp"
	if [ ${#args[@]} -gt 0 ]; then
		$PNAS sample --space fmnist "${args[@]}" --seed "$SEED" -o "$OUT/nets.tmp"
	fi
	if [ "$RANDOM_AT" -gt 0 ]; then
		for t in "${TS[@]}"; do
			$PNAS sample --space fmnist -n "$RANDOM_AT" --latency-target "$t" --tolerance "$RANDOM_TOL" \
				--lut "$OUT/lut.json" --seed "$SEED" -o "$OUT/nets.tmp"
		done
	fi
	rm -rf "$OUT/nets"
	mv "$OUT/nets.tmp" "$OUT/nets"
	touch "$OUT/nets/.done"
}
stage baselines "$OUT/nets/.done" baselines

# 4. every network trained from scratch with the same recipe; selection on
#    the held-out part. With PARETO_SEEDS=N each is trained N times (seeds
#    SEED .. SEED+N-1; the first in train-NAME, the others in
#    train-NAME-sK), and pnas pareto compares their means.
# trainings LABEL NAME MODEL: trains MODEL PARETO_SEEDS times (stages
# "train LABEL", "train LABEL seed K") and sets LIST to the trained models
# joined by "+"
trainings() {
	local label=$1 name=$2 model=$3 k
	stage "train $label" "$OUT/train-$name/model.json" train "$model" "$OUT/train-$name"
	LIST=$OUT/train-$name/model.json
	for ((k = 2; k <= PARETO_SEEDS; k++)); do
		stage "train $label seed $k" "$OUT/train-$name-s$k/model.json" \
			train "$model" "$OUT/train-$name-s$k" "" "" "" $((SEED + k - 1))
		LIST="$LIST+$OUT/train-$name-s$k/model.json"
	done
}
nets=()
for t in "${TS[@]}"; do
	trainings "searched $t" "$t" "$OUT/search-$t/model.json"
	nets+=("searched=$LIST")
done
for n in "$OUT"/nets/*.json; do
	b=$(basename "$n" .json)
	trainings "$b" "$b" "$n"
	case $b in
	*-random-*) nets+=("random=$LIST") ;;
	*) nets+=("uniform=$LIST") ;;
	esac
done

# 5. compile, time and evaluate every network on the 10,000 test images; plot
stage pareto "$OUT/pareto/pareto.json" $PNAS pareto "${nets[@]}" --target "$TARGET" \
	--latency-target "$(IFS=,; echo "${TS[*]}")" --data "$DATA" --split test -o "$OUT/pareto"

# 6. the shipped model (trained again on the whole split when SHIP_EPOCHS > 0),
#    checked with its own program
shipped=$OUT/train-$SHIP/model.json
if [ "$SHIP_EPOCHS" -gt 0 ]; then
	stage "train shipped" "$OUT/ship-train/model.json" train "$OUT/search-$SHIP/model.json" "$OUT/ship-train" 0 "$SHIP_EPOCHS" "$TRAIN_FLAGS $SHIP_FLAGS"
	shipped=$OUT/ship-train/model.json
fi
stage compile "$OUT/ship/model" $PNAS compile "$shipped" --target "$TARGET" -o "$OUT/ship"
stage eval "$OUT/ship/eval.json" bash -c "$PNAS eval $shipped --binary $OUT/ship/model --data $DATA --split test --json >$OUT/ship/eval.json.tmp && mv $OUT/ship/eval.json.tmp $OUT/ship/eval.json"

step "done"
cat "$OUT/ship/eval.json"
echo
echo "stages:     $OUT/stages.jsonl"
echo "pareto:     $OUT/pareto/pareto.png, $OUT/pareto/pareto.md"
echo "shipped:    $shipped, program $OUT/ship/model"
