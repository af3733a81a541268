"""Write faces of the training generator (:mod:`bioface_tf.data.stream`) to an HDF5 file.

Held-out faces of the family a model trained on, in the ``bioface synth``
layout (``zx_7`` + ``lrgb`` + ``gt_*``), so that ``bioface evaluate`` and
``benchmarks/bench_agreement.py`` score them like any other file. Use a seed
no training run uses (training uses ``train.seed``, default 0, and its
held-out agreement faces ``seed + 1_000_003``).

    python benchmarks/write_stream_faces.py --n 300 --seed 424242 --out heldout_stream.h5
"""

from __future__ import annotations

import argparse
import os

import h5py
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bioface_tf.data.celeba import DATASET, EMBEDDED_LIGHTING, GROUND_TRUTH_MAPS, GROUND_TRUTH_VECTORS  # noqa: E402
from bioface_tf.data.stream import make_stream_dataset  # noqa: E402

BATCH = 25


def write(path: str, n: int, size: int, seed: int) -> None:
    batches = iter(make_stream_dataset(BATCH, image_size=size, seed=seed))
    parts: dict[str, list[np.ndarray]] = {}
    for _ in range(-(-n // BATCH)):
        batch = {k: v.numpy() for k, v in next(batches).items()}
        for key, value in batch.items():
            parts.setdefault(key, []).append(value)
    data = {k: np.concatenate(v)[:n] for k, v in parts.items()}
    albedo = np.zeros_like(data["srgb"])
    zx7 = np.concatenate([data["srgb"], data["normals"], data["mask"], albedo], axis=-1).transpose(0, 3, 1, 2)
    with h5py.File(path, "w") as f:
        f[DATASET] = zx7.astype(np.float32)
        f[EMBEDDED_LIGHTING] = _lighting(data)
        for key in GROUND_TRUTH_MAPS:
            f[key] = data[key][..., 0]
        for key in GROUND_TRUTH_VECTORS:
            f[key] = data[key]
        f.attrs.update(family="stream", seed=seed, normal_encoding="signed",
                       description="held-out faces of bioface_tf.data.stream (the training generator)")


def _lighting(data: dict) -> np.ndarray:
    """SH lighting `(N, 3, 9)` reproducing the batch's pseudo shading from its normals (least squares)."""
    from bioface_tf.data.stream import fit_sh

    sh = fit_sh(data["normals"], data["shading"][..., 0], data["mask"][..., 0])
    sh = np.asarray(sh, np.float32).reshape(len(data["srgb"]), -1)[:, :9]
    return np.repeat(sh[:, None, :], 3, axis=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=424242)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    write(args.out, args.n, args.size, args.seed)
    print(f"wrote {args.n} faces to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
