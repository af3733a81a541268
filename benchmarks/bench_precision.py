"""Training speed of float32 against mixed bfloat16 on this CPU (``train.mixed_precision``).

Each configuration — a network variant under a Keras dtype policy — trains
the full task model (network, physics decoder, the ``report`` preset's
losses) with ``model.fit`` on one in-memory batch, in its own Python
process with oneDNN on (as ``bioface train`` runs); configurations take
turns for ``--rounds`` rounds so that a shared machine slows them alike,
and the table gives each one's median over rounds of its mean step time.
The first ``--warmup`` steps (tracing, allocation) are not timed. The last
column is the median of bfloat16's step time over float32's, per round.

    python benchmarks/bench_precision.py [--variants mobile full] [--size 64] [--batch 25] \\
        [--steps 5] [--warmup 2] [--rounds 2] [--out benchmarks/results/precision_cpu.md]

Prints a Markdown table (with the CPU's bfloat16 flags and the command);
``--out`` also writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

POLICIES = ("float32", "mixed_bfloat16")
ROOT = pathlib.Path(__file__).resolve().parents[1]


def worker(variant: str, policy: str, args) -> list[float]:
    """Per-step seconds of ``fit`` for one configuration (in this process)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from training.presets import load_preset
    from training.train import build_and_compile

    keras.config.set_dtype_policy(policy)
    preset = load_preset("report", [f"model.variant={variant}", f"model.image_size={args.size}"])
    model = build_and_compile(preset)
    b, s = args.batch, args.size
    rng = np.random.default_rng(0)
    x = rng.normal(0, 50, (b, s, s, 3)).astype("float32")
    targets = {
        "srgb": rng.random((b, s, s, 3)).astype("float32"),
        "mask": np.ones((b, s, s, 1), "float32"),
        "shading": rng.random((b, s, s, 1)).astype("float32"),
        "shading_valid": np.ones((b,), "float32"),
    }
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    data = tf.data.Dataset.from_tensors((x, targets)).repeat()
    history = model.fit(data, epochs=1, steps_per_epoch=args.warmup + args.steps, callbacks=[Timer()], verbose=0)
    loss = history.history["loss"][-1]
    if not np.isfinite(loss):
        raise SystemExit(f"{variant} {policy}: loss {loss} is not finite")
    return list(np.diff(times[args.warmup - 1 :]))


def _run(variant: str, policy: str, args) -> list[float] | None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, __file__, "--worker", variant, policy]
    command += ["--size", str(args.size), "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        print(f"  {variant} {policy}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _bf16_flags() -> str:
    from training.environment import NATIVE_BF16_FLAGS, cpu_flags

    found = sorted(set(NATIVE_BF16_FLAGS) & cpu_flags())
    return ", ".join(found) or "none"


def _load() -> str:
    """The 1-minute load average per logical CPU (above 1: the CPUs were shared)."""
    return f"{os.getloadavg()[0] / os.cpu_count():.1f}"


def _table(args, rounds: dict, load: tuple[str, str]) -> str:
    lines = [
        f"Training step of the task model (network + physics + `report` losses), `model.fit`, oneDNN on, "
        f"batch {args.batch}, {args.size}×{args.size}; median over {args.rounds} rounds of the mean of "
        f"{args.steps} timed steps ({args.warmup} warm-up steps not timed).",
        "",
        "| variant | float32 images/s | mixed_bfloat16 images/s | bf16 speed-up |",
        "|---|---:|---:|---:|",
    ]
    for variant in args.variants:
        pairs = [(a, b) for a, b in zip(*(rounds[(variant, p)] for p in POLICIES)) if a and b]
        if not pairs:
            lines.append(f"| {variant} | failed | | |")
            continue
        f32, bf16 = zip(*pairs)
        speedup = statistics.median(a / b for a, b in pairs)
        lines.append(
            f"| {variant} | {args.batch / statistics.median(f32):.2f} | {args.batch / statistics.median(bf16):.2f} "
            f"| {speedup:.2f}× |"
        )
    lines += [
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"native bf16 flags: {_bf16_flags()}; Python {platform.python_version()}. Load average per CPU "
        f"{load[0]} at the start, {load[1]} at the end (above 1: other work shared the CPUs and the figures "
        "are noisy).",
        "",
        "Command: `nice -n 10 python benchmarks/bench_precision.py " + " ".join(sys.argv[1:]) + "`",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["mobile", "full"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", help="also write the table here")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args)))
        return 0
    rounds = {(variant, policy): [] for variant in args.variants for policy in POLICIES}
    start_load = _load()
    for round_index in range(args.rounds):
        for variant, policy in rounds:
            steps = _run(variant, policy, args)
            rounds[(variant, policy)].append(statistics.mean(steps) if steps else None)
            if steps:
                seconds = statistics.mean(steps)
                print(f"round {round_index + 1} {variant} {policy}: {1000 * seconds:.0f} ms/step", file=sys.stderr)
    table = _table(args, rounds, (start_load, _load()))
    print(table)
    if args.out:
        pathlib.Path(args.out).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
