"""Input pipeline throughput: CelebA-layout HDF5 → batched, augmented tensors.

Writes a CelebA-layout image/lighting pair of random faces (64×64, the
release's layout, normals in the [0,1] encoding) to a temporary folder, then
times full passes of ``make_dataset`` (random-access reads, SH shading,
flips, preprocessing, batching, prefetch) pinned to 2 CPU cores, and the
reader alone for comparison. The first batch of each pass (start-up) is not
timed.

    python benchmarks/bench_input_pipeline.py [--faces 2000] [--epochs 3] \
        [--out benchmarks/results/input_pipeline_cpu.md]

Prints a Markdown table; with --out also writes it with the machine's facts.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py
import numpy as np
import tensorflow as tf

from bioface_tf.data.celeba import CelebAFaces
from bioface_tf.data.pipeline import make_dataset

CORES = 2
TRAINING_STEP_IMAGES_PER_S = 5.0
CASES = (
    # batch, preprocessing, shuffle, flip
    (25, "reference", True, True),
    (25, "display", True, True),
    (25, "reference", False, False),
    (64, "reference", True, True),
)


def pin_to_cores(n: int) -> str:
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[:n])
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)
    return ",".join(map(str, available[:n]))


def write_faces(folder: pathlib.Path, n: int, size: int = 64, seed: int = 0) -> pathlib.Path:
    rng = np.random.default_rng(seed)
    images = folder / "zx_7_d10_inmc_celebA_01.hdf5"
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    mask = (xx**2 / 0.16 + yy**2 / 0.2 < 1).astype(np.float32)
    with h5py.File(images, "w") as f:
        data = f.create_dataset("zx_7", (n, 10, size, size), "f4")
        for start in range(0, n, 250):
            stop = min(start + 250, n)
            normals = rng.normal(size=(stop - start, 3, size, size))
            normals[:, 2] = np.abs(normals[:, 2]) + 0.5
            normals /= np.linalg.norm(normals, axis=1, keepdims=True)
            block = rng.uniform(0, 1, size=(stop - start, 10, size, size)).astype(np.float32)
            block[:, 3:6] = (normals + 1) / 2
            block[:, 6] = mask
            data[start:stop] = block
    with h5py.File(folder / "zx_7_d3_lrgb_celebA_01.hdf5", "w") as f:
        sh = rng.normal(scale=0.3, size=(n, 3, 9)).astype(np.float32)
        sh[:, :, 0] += 1.5
        f["zx_7"] = sh
    return images


def time_passes(make_batches, epochs: int) -> float:
    """Images per second over ``epochs`` passes, the first batch of each excluded."""
    images, seconds = 0, 0.0
    for _ in range(epochs):
        batches = iter(make_batches())
        next(batches)
        start = time.perf_counter()
        for batch in batches:
            images += int(batch["image"].shape[0])
        seconds += time.perf_counter() - start
    return images / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    cores = pin_to_cores(CORES)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        images = write_faces(pathlib.Path(tmp), args.faces)
        size_mb = sum(p.stat().st_size for p in pathlib.Path(tmp).iterdir()) / 2**20
        with CelebAFaces([images]) as faces:
            for batch, mode, shuffle, flip in CASES:
                dataset = make_dataset(faces, batch, mode, flip=flip, shuffle=shuffle, seed=0, validate=False)
                rate = time_passes(lambda: dataset, args.epochs)
                rows.append((f"tf.data, batch {batch}, {mode}, shuffle {'on' if shuffle else 'off'}, flips {'on' if flip else 'off'}", rate))
            order = np.random.default_rng(0).permutation(len(faces))
            reader = lambda: (faces.read(np.sort(order[i : i + 25])) for i in range(0, len(faces), 25))
            rows.append(("reader alone (NumPy), batch 25, random order", time_passes(reader, args.epochs)))

    lines = [
        "| case | images/s | × a training step (5 img/s) |",
        "|---|---:|---:|",
        *(f"| {name} | {rate:,.0f} | {rate / TRAINING_STEP_IMAGES_PER_S:,.0f}× |" for name, rate in rows),
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        facts = (
            f"{args.faces} faces of 64×64 ({size_mb:.0f} MB of HDF5, page-cached), {args.epochs} passes each; "
            f"pinned to CPU cores {cores} of {os.cpu_count()} ({platform.processor() or platform.machine()}); "
            f"TensorFlow {tf.__version__}, h5py {h5py.__version__}, Python {platform.python_version()}."
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            "# Input pipeline throughput (CPU, 2 cores)\n\n"
            "`python benchmarks/bench_input_pipeline.py --faces "
            f"{args.faces} --epochs {args.epochs} --out {args.out}`\n\n{facts}\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
