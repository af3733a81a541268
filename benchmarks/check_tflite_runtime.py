"""Load and run every ``.tflite`` under a folder with ``tflite-runtime`` (e.g. 2.14).

``tflite-runtime`` 2.14 needs NumPy < 2, so this runs in its own throwaway
environment, with nothing from this project imported:

    python3 -m venv /tmp/tflrt && /tmp/tflrt/bin/pip install tflite-runtime==2.14.0 'numpy<2'
    python benchmarks/bench_tflite.py --mobile M.keras --keep /tmp/bundles
    /tmp/tflrt/bin/python benchmarks/check_tflite_runtime.py /tmp/bundles [--save DIR]

Each model's first signature is run on random inputs in its documented
ranges (free dimensions set to 64). ``--save DIR`` writes each model's inputs
and outputs to ``DIR/<bundle>__<model>.npz`` for comparison with another
runtime.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
import tflite_runtime
from tflite_runtime.interpreter import Interpreter

FREE_SIZE = 64


def random_inputs(details: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    inputs = {}
    for name, detail in details.items():
        shape = [FREE_SIZE if s == -1 else int(s) for s in detail["shape_signature"]]
        value = rng.uniform(0, 1, shape).astype(np.float32)
        if name == "light_weights":
            value /= value.sum()
        elif name == "cct":
            value = 1 + 21 * value
        inputs[name] = value
    return inputs


def check(path: pathlib.Path, save: pathlib.Path | None) -> str:
    label = f"{path.parent.name}/{path.name}"
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
    except (ValueError, RuntimeError) as err:
        return f"{label}: does not load: {str(err).splitlines()[0]}"
    try:
        signature = next(iter(interpreter.get_signature_list()))
        runner = interpreter.get_signature_runner(signature)
        inputs = random_inputs(runner.get_input_details(), np.random.default_rng(0))
        outputs = runner(**inputs)
    except (ValueError, RuntimeError) as err:
        return f"{label}: loads, does not run: {str(err).splitlines()[0]}"
    if save:
        arrays = {**{f"in_{k}": v for k, v in inputs.items()}, **{f"out_{k}": v for k, v in outputs.items()}}
        np.savez(save / f"{path.parent.name}__{path.name}.npz", **arrays)
    finite = all(np.isfinite(v).all() for v in outputs.values())
    return f"{label}: signature '{signature}' runs, outputs {sorted(outputs)}, all finite: {finite}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=pathlib.Path)
    parser.add_argument("--save", type=pathlib.Path, default=None)
    args = parser.parse_args()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    print(f"tflite-runtime {tflite_runtime.__version__}, NumPy {np.__version__}")
    for path in sorted(args.folder.rglob("*.tflite")):
        print(check(path, args.save))


if __name__ == "__main__":
    main()
