"""Turn a finished training run into a shipped model folder (``bioface_tf/pretrained/<name>/``).

Copies the network without its optimiser state (inference needs none; the
file is a third of the size), the run's ``config.json`` and ``log.csv``,
and writes ``card.json``: the command that trained it, the data it saw, its
size and its accuracy — the ``bioface evaluate --json`` outputs given with
``--accuracy FAMILY=FILE.json``. ``training/make_default_model.sh`` runs
the whole recipe.

    python -m training.package_model runs/bioface_mobile bioface_tf/pretrained/bioface_mobile \\
        --command "bioface train --preset synthetic --out runs/bioface_mobile" \\
        --data "8000 faces of bioface_tf.data.stream, seed 0 (train.rendered_pool)" \\
        --accuracy training_family=heldout.json --accuracy evaluation_family=eval.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil

from bioface_tf import native_logs


INFERENCE_NOTE = (
    "with mirror_average the network estimates the face and its left-right mirror image and the model decodes "
    "the average (bioface_tf.model.mirror; --no-mirror-average for one pass); the accuracy is measured as it infers"
)


def package(run: pathlib.Path, destination: pathlib.Path, command: str, data: str, accuracy: dict) -> dict:
    """Write ``model.keras``, ``config.json``, ``log.csv`` and ``card.json`` into ``destination``."""
    from training.evaluate import load_trained

    destination.mkdir(parents=True, exist_ok=True)
    model = load_trained(run / "model.keras")
    target = destination / "model.keras"
    model.save(target)
    for name in ("config.json", "log.csv"):
        shutil.copy2(run / name, destination / name)
    model_config = json.loads((run / "config.json").read_text())["model"]
    card = {
        "training_command": command,
        "data": data,
        "size": {
            "variant": model_config["variant"],
            "width_multiplier": model_config.get("width_multiplier"),
            "parameters": int(model.count_params()),
            "model_keras_bytes": target.stat().st_size,
            "image_size": int(model.input_shape[1]),
        },
        "inference": {"mirror_average": bool(model.mirror_average), "note": INFERENCE_NOTE},
        "accuracy": accuracy,
        "accuracy_definition": (
            "bioface evaluate: Pearson r per face inside the mask, then averaged; mean errors "
            "|mean in mask - true mean| per face in map units; PSNR inside the mask"
        ),
    }
    (destination / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=pathlib.Path)
    parser.add_argument("destination", type=pathlib.Path)
    parser.add_argument("--command", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--accuracy", action="append", default=[], metavar="FAMILY=FILE.json")
    args = parser.parse_args(argv)
    native_logs.quiet()
    accuracy = {}
    for pair in args.accuracy:
        family, _, path = pair.partition("=")
        accuracy[family] = {k: round(v, 4) if isinstance(v, float) else v
                            for k, v in json.loads(pathlib.Path(path).read_text()).items()}
    card = package(args.run, args.destination, args.command, args.data, accuracy)
    print(json.dumps(card, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
