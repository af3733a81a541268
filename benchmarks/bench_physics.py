"""Time the physics decoder alone: forward, and forward + gradient w.r.t. the maps.

Cases: batch 25 at 64×64 (training at the data's size) and batch 1 at
224×224 (the paper's size), each eager and with XLA (`jit_compile=True`).

    python benchmarks/bench_physics.py [--repeats 30] [--out benchmarks/results/physics_decoder_cpu.md]

Prints a Markdown table; with --out also writes it with the machine's facts.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from bioface_tf.physics import PhysicsDecoder

CASES = ((25, 64), (1, 224))


def random_inputs(batch: int, size: int, seed: int = 0) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(seed)
    weights = rng.random((batch, 14))
    maps = lambda low, high: tf.constant(rng.uniform(low, high, (batch, size, size, 1)), tf.float32)
    return {
        "fmel": maps(-1, 1),
        "fblood": maps(-1, 1),
        "shading": maps(0.1, 2.0),
        "specmask": maps(0.0, 0.3),
        "b": tf.constant(rng.uniform(-3, 3, (batch, 2)), tf.float32),
        "light_weights": tf.constant(weights / weights.sum(1, keepdims=True), tf.float32),
        "cct": tf.constant(rng.uniform(1, 22, (batch, 1)), tf.float32),
    }


def make_steps(decoder: PhysicsDecoder, jit: bool):
    def forward(inputs):
        return decoder(inputs)["linear_srgb"]

    def forward_backward(inputs):
        maps = [inputs[k] for k in ("fmel", "fblood", "shading", "specmask")]
        with tf.GradientTape() as tape:
            tape.watch(maps)
            loss = tf.reduce_sum(decoder(inputs)["linear_srgb"])
        return tape.gradient(loss, maps)

    if jit:
        return tf.function(forward, jit_compile=True), tf.function(forward_backward, jit_compile=True)
    return forward, forward_backward


def median_ms(step, inputs, repeats: int) -> float:
    for _ in range(3):
        tf.nest.map_structure(lambda t: t.numpy(), step(inputs))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step(inputs))
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", help="also write the table (Markdown) here")
    args = parser.parse_args()

    decoder = PhysicsDecoder()
    rows = []
    for batch, size in CASES:
        inputs = random_inputs(batch, size)
        for jit in (False, True):
            forward, forward_backward = make_steps(decoder, jit)
            fwd = median_ms(forward, inputs, args.repeats)
            fwd_bwd = median_ms(forward_backward, inputs, args.repeats)
            rows.append((batch, size, "XLA" if jit else "eager", fwd, fwd_bwd, batch / (fwd_bwd / 1000)))

    header = "| batch | size | mode | forward ms | forward+backward ms | images/s (fwd+bwd) |\n|---:|---:|---|---:|---:|---:|"
    lines = [f"| {b} | {s}×{s} | {m} | {f:.2f} | {fb:.2f} | {ips:.0f} |" for b, s, m, f, fb, ips in rows]
    table = "\n".join([header, *lines])
    print(table)
    if args.out:
        facts = (
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"TensorFlow {tf.__version__}; median of {args.repeats} runs after 3 warm-up runs.\n"
            f"Command: `python benchmarks/bench_physics.py --out {args.out}`\n\n"
        )
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write("# Physics decoder timing (CPU)\n\n" + facts + table + "\n")


if __name__ == "__main__":
    main()
