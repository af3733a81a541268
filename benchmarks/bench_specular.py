"""Throughput of the specular separation on 64×64 faces (2 CPU cores).

Times, on synthetic dichromatic faces (:mod:`bioface_tf.dichromatic_scene`):

* the plain dark channel (linearise, divide by the illuminant, min over
  channels) and the refined MAP estimate (colour only and with the light-lobe prior), in one
  process pinned to one core;
* the whole ``bioface specular-targets`` command (HDF5 in, sidecar out) with
  one and two worker processes, pinned to the two cores, on a file with normals.

    python benchmarks/bench_specular.py [--faces 2048] [--out benchmarks/results/specular_throughput.md]

Prints a Markdown table; with --out also writes it with the machine's facts.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import tempfile
import time

import h5py
import numpy as np

from bioface_tf import specular
from bioface_tf.cli import main as bioface
from bioface_tf.dichromatic_scene import render_face

CORES = (0, 1)
SIZE = 64


def _faces(n: int):
    scenes = [render_face(SIZE, seed=seed) for seed in range(n)]
    return tuple(np.stack([getattr(s, k) for s in scenes]) for k in ("image_srgb", "mask", "normals"))


def _best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _in_process(images, masks, normals, chunk: int) -> list[tuple[str, float]]:
    os.sched_setaffinity(0, {CORES[0]})
    white = np.ones((len(images), 3), np.float32)

    def dark():
        specular.dark_channel(specular.linearise(images), white)

    def refined(geometry="none"):
        params = specular.RefinementParams(geometry=geometry)
        for start in range(0, len(images), chunk):
            part = slice(start, start + chunk)
            specular.separate_batch(images[part], masks[part], params=params,
                                    normals=normals[part] if geometry != "none" else None)

    return [
        ("dark channel, 1 core (in process)", len(images) / _best_of(dark)),
        (f"refined, colour only (`geometry='none'`), 1 core (in process, {chunk} faces per solve)",
         len(images) / _best_of(refined)),
        (f"refined, `geometry='light'`, 1 core (in process, {chunk} faces per solve)",
         len(images) / _best_of(lambda: refined("light"))),
    ]


def _command(images, masks, normals, chunk: int) -> list[tuple[str, float]]:
    os.sched_setaffinity(0, set(CORES))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(tmp) / "faces_inmc.hdf5"
        data = np.zeros((len(images), 10, SIZE, SIZE), np.float32)
        data[:, 0:3] = np.moveaxis(images, -1, 1)
        data[:, 3:6] = np.moveaxis(normals, -1, 1)
        data[:, 6] = masks
        with h5py.File(source, "w") as f:
            f.create_dataset("zx_7", data=data)
        for workers, geometry in ((1, "light"), (2, "light"), (2, "none")):
            args = ["specular-targets", str(source), "--out", tmp, "--overwrite", "--workers", str(workers)]
            args += ["--chunk", str(chunk), "--geometry", geometry]
            seconds = _best_of(lambda: bioface(args), repeats=2)
            which = "default, `--geometry light`" if geometry == "light" else "`--geometry none`"
            rows.append((f"`bioface specular-targets` ({which}), {workers} worker(s), HDF5 with normals to sidecar",
                         len(images) / seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=2048)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    images, masks, normals = _faces(args.faces)
    rows = _in_process(images, masks, normals, args.chunk) + _command(images, masks, normals, args.chunk)
    params = specular.RefinementParams()
    lines = [
        f"| {SIZE}×{SIZE} faces, {args.faces} synthetic | faces/s |",
        "|---|---:|",
        *(f"| {name} | {rate:,.0f} |" for name, rate in rows),
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        facts = (
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
            f"Python {platform.python_version()}, NumPy {np.__version__}. "
            f"Refinement: defaults of `RefinementParams` (`chromaticity={params.chromaticity!r}`), and "
            "`geometry='light'`, the command's default for face files with normals. "
            f"Load average at the end: {os.getloadavg()[0]:.1f}. "
            f"Command: `python benchmarks/bench_specular.py --faces {args.faces} --out {args.out}`."
        )
        args.out.write_text(f"# Specular separation throughput\n\n{facts}\n\n{table}\n")


if __name__ == "__main__":
    main()
