#!/bin/bash
# The multi-seed comparison of IE-FT, FT, KD and plain training on Fashion-MNIST, and the
# larger-student check (a ResNet-20 student taught by a ResNet-8), as two one-thread jobs at a time.
#
#   scripts/ie-kd-seeds.sh TEACHER_MODEL OUT_DIR
#
# TEACHER_MODEL is a ResNet-20 model file trained on Fashion-MNIST (`iekd train --arch resnet20
# --dataset fashion-mnist --epochs 10 --schedule cosine`). Environment: IEKD (the binary, default
# target/release/iekd), TRAIN (training images, default 12000), EPOCHS (default 10), SEEDS
# (default "0 1 2"), BIG_SEEDS (the larger-student runs, default "0 1 2"), JOBS (parallel runs,
# default 2). Each run's metrics.jsonl lands in OUT_DIR/<method>-s<seed>/ (big-<method>-s<seed>/
# for the larger student); scripts/ie-kd-table.py OUT_DIR [--teacher TEACHER_MODEL] prints the
# tables.
set -euo pipefail
teacher=${1:?teacher model file}
out=${2:?output folder}
iekd=${IEKD:-target/release/iekd}
train=${TRAIN:-12000}
epochs=${EPOCHS:-10}
seeds=${SEEDS:-0 1 2}
big_seeds=${BIG_SEEDS:-0 1 2}
jobs=${JOBS:-2}
mkdir -p "$out"
export RAYON_NUM_THREADS=1
common=(--dataset fashion-mnist --train-subset "$train" --epochs "$epochs" --schedule cosine)

run() { # name, then the arguments of one iekd command
  local name=$1; shift
  if [ -f "$out/$name/model.safetensors" ] && [ -f "$out/$name/.done" ]; then return; fi
  "$iekd" "$@" --out "$out/$name" > "$out/$name.log" 2>&1 && touch "$out/$name/.done"
}
export -f run
export iekd out

run ae-r20 autoencoder --teacher "$teacher" --teacher-arch resnet20 --dataset fashion-mnist \
  --train-subset "$train" --epochs 2 --seed 0

jobs_list() {
  for s in $seeds; do
    for m in none kd ft ie-ft; do
      echo "$m-s$s distill --method $m --teacher $teacher --teacher-arch resnet20 \
--autoencoder $out/ae-r20/model.safetensors --student-arch resnet8 ${common[*]} --seed $s"
    done
  done
}
jobs_list | xargs -P "$jobs" -I{} bash -c 'run {}'

# The larger student: the plain ResNet-8 of seed 0 teaches a ResNet-20.
small=$out/none-s0/model.safetensors
run ae-r8 autoencoder --teacher "$small" --teacher-arch resnet8 --dataset fashion-mnist \
  --train-subset "$train" --epochs 2 --seed 0
for s in $big_seeds; do
  for m in none kd ie-ft; do
    echo "big-$m-s$s distill --method $m --teacher $small --teacher-arch resnet8 \
--autoencoder $out/ae-r8/model.safetensors --student-arch resnet20 ${common[*]} --seed $s"
  done
done | xargs -P "$jobs" -I{} bash -c 'run {}'
