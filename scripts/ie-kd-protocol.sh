#!/bin/bash
# The IE-KD protocol on Fashion-MNIST: hyper-parameters chosen on a held-out validation split,
# then every arm over paired seeds, then the larger-student check.
#
#   scripts/ie-kd-protocol.sh TEACHER_MODEL OUT_DIR
#
# TEACHER_MODEL is a ResNet-20 trained on Fashion-MNIST without the validation images (e.g.
# `iekd train --arch resnet20 --dataset fashion-mnist --val-split 5000 --train-subset 20000
# --epochs 5 --schedule cosine --seed 100`). Every student holds out the same last VAL training
# images and trains on the first TRAIN of the rest.
#
# 1. Sweep (seed 100, never an evaluation seed): each recipe's weights are chosen on the last
#    epoch's validation accuracy (sweep-<method>-<setting>/).
# 2. Arms over paired seeds: a seed gives every arm the same student initialisation and the same
#    data order; the arms are none, kd, ft, ie-ft and ie-ft with lambda_exp = 0 (the control: the
#    exploration encoder kept, its loss dropped), <arm>-s<seed>/; then OD and IE-OD, swept and
#    run the same way (2b).
# 3. Larger student: the plain ResNet-8 of seed 0 teaches a ResNet-20 (big-<arm>-s<seed>/).
#
# Environment: IEKD (default target/release/iekd), TRAIN (default 6000), VAL (5000), EPOCHS (6),
# SEEDS ("0 1 2 3 4"), JOBS (2 one-thread runs at a time). scripts/ie-kd-table.py OUT_DIR
# --teacher TEACHER_MODEL prints the tables; finished runs are skipped when run again.
set -euo pipefail
teacher=${1:?teacher model file}
out=${2:?output folder}
iekd=${IEKD:-target/release/iekd}
seeds=${SEEDS:-0 1 2 3 4}
jobs=${JOBS:-2}
mkdir -p "$out"
export RAYON_NUM_THREADS=1
common="--dataset fashion-mnist --device cpu --train-subset ${TRAIN:-6000} --val-split ${VAL:-5000}"
epochs="--epochs ${EPOCHS:-6} --schedule cosine"

run() { # name, then the arguments of one iekd command
  local name=$1; shift
  if [ -f "$out/$name/.done" ]; then return; fi
  "$iekd" "$@" --out "$out/$name" > "$out/$name.log" 2>&1 && touch "$out/$name/.done"
}
export -f run
export iekd out
parallel() { xargs -P "$jobs" -I{} bash -c 'run {}'; }

run ae-r20 autoencoder --teacher "$teacher" --teacher-arch resnet20 $common --epochs 2 --seed 0
student="--teacher $teacher --teacher-arch resnet20 --autoencoder $out/ae-r20/model.safetensors \
--student-arch resnet8 $common $epochs"

# 1. The sweep.
{
  for w in "500 50" "500 10" "500 200" "100 20"; do
    set -- $w; echo "sweep-ie-ft-$1-$2 distill --method ie-ft --lambda-inh $1 --lambda-exp $2 $student --seed 100"
  done
  for w in "0.9 4" "0.95 20"; do
    set -- $w; echo "sweep-kd-$1-$2 distill --method kd --alpha $1 --temperature $2 $student --seed 100"
  done
  for b in 500 100; do echo "sweep-ft-$b distill --method ft --beta $b $student --seed 100"; done
} | parallel

# The setting with the best last-epoch validation accuracy, as "a b" from sweep-<method>-a[-b].
best() {
  python3 - "$out" "$1" <<'PY'
import json, pathlib, sys
out, method = pathlib.Path(sys.argv[1]), sys.argv[2]
scores = {}
for m in out.glob(f"sweep-{method}-*/metrics.jsonl"):
    setting = m.parent.name[len(f"sweep-{method}-"):]
    if setting[0].isdigit():
        scores[setting] = json.loads(m.read_text().splitlines()[-1])["val_acc"]
print(max(scores, key=scores.get).replace("-", " "))
PY
}
read -r inh exp <<< "$(best ie-ft)"
read -r alpha temp <<< "$(best kd)"
beta=$(best ft)
echo "chosen on validation: ie-ft lambda_inh $inh lambda_exp $exp; kd alpha $alpha T $temp; ft beta $beta" \
  | tee "$out/chosen.txt"

# 2. The arms over paired seeds (plain training first: its seed-0 student teaches in step 3).
{
  for s in $seeds; do echo "none-s$s distill --method none $student --seed $s"; done
  for s in $seeds; do
    echo "kd-s$s distill --method kd --alpha $alpha --temperature $temp $student --seed $s"
    echo "ft-s$s distill --method ft --beta $beta $student --seed $s"
    echo "ie-ft-s$s distill --method ie-ft --lambda-inh $inh --lambda-exp $exp $student --seed $s"
    echo "ie-ft-exp0-s$s distill --method ie-ft --lambda-inh $inh --lambda-exp 0 $student --seed $s"
  done
} | parallel

# 2b. OD and IE-OD (no auto-encoder): their weights swept on validation at seed 100 like the
#     others, then the same paired seeds.
od_student="--teacher $teacher --teacher-arch resnet20 --student-arch resnet8 $common $epochs"
{
  for b in 0.001 0.01; do echo "sweep-od-$b distill --method od --beta $b $od_student --seed 100"; done
  for w in "0.001 0.1" "0.001 0.01"; do
    set -- $w; echo "sweep-ie-od-$1-$2 distill --method ie-od --lambda-inh $1 --lambda-exp $2 $od_student --seed 100"
  done
} | parallel
od_beta=$(best od)
read -r od_inh od_exp <<< "$(best ie-od)"
echo "chosen on validation: od beta $od_beta; ie-od lambda_inh $od_inh lambda_exp $od_exp" | tee -a "$out/chosen.txt"
for s in $seeds; do
  echo "od-s$s distill --method od --beta $od_beta $od_student --seed $s"
  echo "ie-od-s$s distill --method ie-od --lambda-inh $od_inh --lambda-exp $od_exp $od_student --seed $s"
done | parallel

# 3. The larger student, taught by the plain ResNet-8 of seed 0.
small=$out/none-s0/model.safetensors
run ae-r8 autoencoder --teacher "$small" --teacher-arch resnet8 $common --epochs 2 --seed 0
big="--teacher $small --teacher-arch resnet8 --autoencoder $out/ae-r8/model.safetensors \
--student-arch resnet20 $common $epochs"
for s in $seeds; do
  echo "big-none-s$s distill --method none $big --seed $s"
  echo "big-kd-s$s distill --method kd --alpha $alpha --temperature $temp $big --seed $s"
  echo "big-ie-ft-s$s distill --method ie-ft --lambda-inh $inh --lambda-exp $exp $big --seed $s"
done | parallel
