#!/usr/bin/env bash
# The shipped default model, bioface_tf/pretrained/bioface_mobile/, from nothing:
# train on rendered faces, measure on held-out faces of the training generator and
# on the evaluation-only family, package (card.json), export the TFLite bundle.
# About 60 minutes on a 2-core CPU. Run from the repository root with the venv active.
set -euo pipefail
RUN=${RUN:-runs/bioface_mobile}
DEST=bioface_tf/pretrained/bioface_mobile
EVAL=${EVAL:-runs/eval_sets}
mkdir -p "$EVAL"

bioface train --preset synthetic --out "$RUN" --no-tensorboard
python benchmarks/write_stream_faces.py --n 300 --seed 424242 --out "$EVAL/heldout_stream_300.h5"
python -c "from bioface_tf.data.eval_faces import write_eval_faces; write_eval_faces('$EVAL/eval_faces_300.h5', 300, size=64, seed=2026)"
bioface evaluate --model "$RUN/model.keras" --data "$EVAL/heldout_stream_300.h5" --json > "$EVAL/training_family.json"
bioface evaluate --model "$RUN/model.keras" --data "$EVAL/eval_faces_300.h5" --json > "$EVAL/evaluation_family.json"
python -m training.package_model "$RUN" "$DEST" \
    --command "bioface train --preset synthetic --out $RUN --no-tensorboard" \
    --data "20000 faces rendered by bioface_tf.data.stream (seed 0, train.rendered_pool), 16 x 400 steps of 25; photometric input features" \
    --accuracy "training_family=$EVAL/training_family.json" \
    --accuracy "evaluation_family=$EVAL/evaluation_family.json"
bioface export --model "$DEST/model.keras" --quantize dynamic --out "$DEST/lite"
