"""Rendered faces per second: the training stream and ``bioface synth``.

Times ``make_stream_dataset`` (batches of 64 at 64×64, after warm-up
batches that include the XLA compilation) and ``write_synthetic`` (an HDF5
file, after a warm-up file), and prints a markdown table with the CPU model,
core count, load average and the CPU seconds this process used per face (a
number less sensitive than wall-clock time to other jobs on the machine).

    python benchmarks/bench_synthesis.py --out benchmarks/results/synthesis_cpu.md
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from bioface_tf.data.stream import BLOCK, make_stream_dataset, render_batch  # noqa: E402
from bioface_tf.data.synth import write_synthetic  # noqa: E402

COMMAND = "python benchmarks/bench_synthesis.py --out benchmarks/results/synthesis_cpu.md"


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(run) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_stream(batch: int, size: int, batches: int, warm_up: int) -> dict:
    iterator = iter(make_stream_dataset(batch, image_size=size, seed=0))
    compile_s, _ = timed(lambda: [next(iterator) for _ in range(warm_up)])
    wall, cpu = timed(lambda: [next(iterator)["image"].numpy() for _ in range(batches)])
    faces = batch * batches
    return {"what": f"`make_stream_dataset({batch}, {size})`", "faces": faces, "wall": wall, "cpu": cpu,
            "warm_up": compile_s}


def bench_render_batch(batch: int, size: int, batches: int) -> dict:
    render_batch(0, batch, size)
    wall, cpu = timed(lambda: [render_batch(0, batch, size, first=(k + 1) * batch) for k in range(batches)])
    return {"what": f"`render_batch(seed, {batch}, {size})`, one thread", "faces": batch * batches, "wall": wall,
            "cpu": cpu, "warm_up": 0.0}


def bench_synth(n: int, size: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        compile_s, _ = timed(lambda: write_synthetic(pathlib.Path(folder) / "warm.h5", BLOCK, size, progress=False))
        wall, cpu = timed(lambda: write_synthetic(pathlib.Path(folder) / "faces.h5", n, size, seed=1, progress=False))
    return {"what": f"`write_synthetic(n={n}, size={size})`", "faces": n, "wall": wall, "cpu": cpu,
            "warm_up": compile_s}


def table(rows: list[dict], load: tuple, load_after: tuple) -> str:
    cores = os.cpu_count()
    lines = [
        "# Rendered-face synthesis throughput (CPU)",
        "",
        f"Command: `{COMMAND}`",
        "",
        f"Machine: {cpu_model()}, {cores} cores; TensorFlow {tf.__version__}; "
        f"load average before {load[0]:.2f}, after {load_after[0]:.2f} (1 min).",
        "",
        "| what | faces | faces/s (wall) | CPU ms per face | warm-up s (incl. XLA compile) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['what']} | {row['faces']} | {row['faces'] / row['wall']:.0f} | "
            f"{1000 * row['cpu'] / row['faces']:.2f} | {row['warm_up']:.1f} |"
        )
    if load[0] > 0.5 or load_after[0] > 2.5:
        lines += [
            "",
            f"Other jobs were using the CPU while this ran (load average {load[0]:.2f} before it started, "
            f"on {cores} cores): wall-clock rates are what was left over, lower bounds for a quiet machine.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--synth-faces", type=int, default=1024)
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    load = os.getloadavg()
    rows = [
        bench_stream(args.batch, args.size, args.batches, warm_up=3),
        bench_render_batch(args.batch, args.size, max(args.batches // 4, 2)),
        bench_synth(args.synth_faces, args.size),
    ]
    text = table(rows, load, os.getloadavg())
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
