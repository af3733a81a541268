#!/usr/bin/env bash
# Rerun every committed table that measures the shipped model (bioface_tf/pretrained/bioface_mobile),
# after the model changes. Writes the face sets first (seeded, so they are the same faces every time).
# The tables' hand-written "Notes" sections are overwritten by the scripts: restore them from git and
# update the figures they quote (git diff shows which).
# Run from the repository root with the venv active. About 20 minutes on a quiet 2-core CPU (19 min on 2026-12-03,
# the face sets already written).
# Usage: bash benchmarks/rerun_model_tables.sh [SETS_DIR]   (default /tmp/w/sets)
set -euo pipefail
SETS=${1:-/tmp/w/sets}
MODEL=bioface_tf/pretrained/bioface_mobile/model.keras
LOG=bioface_tf/pretrained/bioface_mobile/log.csv
RESULTS=benchmarks/results
mkdir -p "$SETS"

[ -f "$SETS/heldout_stream_300.h5" ] || python benchmarks/write_stream_faces.py --n 300 --seed 424242 --out "$SETS/heldout_stream_300.h5"
[ -f "$SETS/heldout_stream_128.h5" ] || python benchmarks/write_stream_faces.py --n 48 --size 128 --seed 424243 --out "$SETS/heldout_stream_128.h5"
[ -f "$SETS/validation_faces_300.h5" ] || bioface synth --family validation_faces --n 300 --seed 5151 --out "$SETS/validation_faces_300.h5"
[ -f "$SETS/eval_faces_300.h5" ] || bioface synth --family eval_faces --n 300 --seed 2026 --out "$SETS/eval_faces_300.h5"
[ -f "$SETS/eval_faces_128.h5" ] || bioface synth --family eval_faces --n 48 --size 128 --seed 2027 --out "$SETS/eval_faces_128.h5"

python benchmarks/bench_agreement.py --model shipped=$MODEL --log shipped=$LOG \
    --model shipped_one_pass=$MODEL --one-pass shipped_one_pass \
    --family training_family_heldout="$SETS/heldout_stream_300.h5" \
    --family validation_family="$SETS/validation_faces_300.h5" \
    --family evaluation_family="$SETS/eval_faces_300.h5" \
    --estimate-from shipped --out $RESULTS/agreement_rendered.md
python benchmarks/eval_mirror_average.py --model $MODEL --data "$SETS/heldout_stream_300.h5" \
    --data "$SETS/validation_faces_300.h5" --data "$SETS/eval_faces_300.h5" --out $RESULTS/mirror_average.md
python benchmarks/eval_skin_tone.py --model $MODEL --family training_family_heldout="$SETS/heldout_stream_300.h5" \
    --family validation_family="$SETS/validation_faces_300.h5" --family evaluation_family="$SETS/eval_faces_300.h5" \
    --out $RESULTS/skin_tone.md
python benchmarks/eval_face_means.py --model $MODEL --data "$SETS/heldout_stream_300.h5" \
    --data "$SETS/validation_faces_300.h5" --data "$SETS/eval_faces_300.h5" --out $RESULTS/face_means.md
python benchmarks/eval_refinement.py --family training_heldout_64="$SETS/heldout_stream_300.h5" \
    --family training_heldout_128="$SETS/heldout_stream_128.h5" \
    --family validation_64="$SETS/validation_faces_300.h5" \
    --family evaluation_64="$SETS/eval_faces_300.h5" --family evaluation_128="$SETS/eval_faces_128.h5" \
    --out $RESULTS/refinement.md
python benchmarks/eval_real_photos.py --model $MODEL --out $RESULTS/real_photos.md
python benchmarks/eval_real_photos.py --model $MODEL --refine 60 --refine-size 64 --out $RESULTS/real_photos_default_fit.md
python benchmarks/eval_real_photos.py --model $MODEL --refine 60 --out $RESULTS/real_photos_refined.md
python benchmarks/eval_specular_families.py --faces 96 --out $RESULTS/specular_families.md
python benchmarks/bench_tflite.py --mobile $MODEL --runs 50 --faces 16 --calibration-faces 100 --out $RESULTS/tflite_cpu.md
python benchmarks/bench_video.py --frames 60 --out $RESULTS/video_cpu.md
