"""Training throughput of BioFaceNet on this CPU, against PyTorch eager.

Every configuration runs in its own Python process (TensorFlow reads
``TF_ENABLE_ONEDNN_OPTS`` once, at import), and the configurations are run
in turn for several rounds so that a noisy, shared machine slows them all
alike; the table reports each one's median over rounds. In each process the
first ``--warmup`` steps (tracing, XLA compilation, allocator warm-up) are
not timed.

Configurations (images per second, training, batch ``--batch``,
``--size``×``--size``):

- ``keras net``: the network alone (``BioFaceBackbone``) with ``model.fit``
  and a mean-squared loss on its raw outputs — like for like with
- ``torch net``: a plain PyTorch eager version of the same architecture
  (written here only; PyTorch is an optional benchmark dependency);
- ``keras task``: the full task model (network + scaling + physics decoder
  + reference losses), tensors in memory;
- ``keras task+data``: the same fed by the ``tf.data`` pipeline from a
  rendered-face HDF5 file — what ``bioface train`` runs.

each with oneDNN off/on and XLA off/on (``--variants``).

    python benchmarks/bench_training.py [--rounds 3] [--steps 8] [--warmup 3] \\
        [--out benchmarks/results/training_cpu.md]

Prints a Markdown table; with ``--out`` also writes it (and a JSON file of
every measurement beside it) with the machine's facts.
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
import tempfile
import time

KERAS_KINDS = ("net", "task", "task+data")
DEFAULT_VARIANTS = ("plain", "xla", "onednn", "onednn+xla")


def keras_worker(kind: str, variant: str, args, data_file: str | None) -> list[float]:
    """Per-step seconds of ``model.fit`` for one configuration (this process)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from bioface_tf.losses import BioFaceLoss
    from bioface_tf.model import BioFaceBackbone, build_bioface
    from training.train import training_pairs

    b, s = args.batch, args.size
    rng = np.random.default_rng(0)
    xla = "xla" in variant
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    if kind == "net":
        model = BioFaceBackbone(image_size=s, width_multiplier=args.width)
        model.compile(keras.optimizers.Adam(1e-5), loss={n: "mse" for n in model.output}, jit_compile=xla)
        x = rng.normal(0, 50, (b, s, s, 3)).astype("float32")
        y = {n: np.zeros((b,) + tuple(model.output[n].shape[1:]), "float32") for n in model.output}
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
    else:
        model = build_bioface(s, "full", width_multiplier=args.width)
        model.compile(keras.optimizers.Adam(1e-5), loss=BioFaceLoss(), jit_compile=xla)
        if kind == "task":
            x = rng.normal(0, 50, (b, s, s, 3)).astype("float32")
            targets = {
                "srgb": rng.random((b, s, s, 3)).astype("float32"),
                "mask": np.ones((b, s, s, 1), "float32"),
                "shading": rng.random((b, s, s, 1)).astype("float32"),
                "shading_valid": np.ones((b,), "float32"),
            }
            data = tf.data.Dataset.from_tensors((x, targets)).repeat()
        else:
            from bioface_tf.data import CelebAFaces
            from bioface_tf.data.pipeline import make_dataset

            faces = CelebAFaces([data_file], image_size=s)
            data = training_pairs(make_dataset(faces, batch_size=b, drop_remainder=True, validate=False)).repeat()
    model.fit(data, epochs=1, steps_per_epoch=args.warmup + args.steps, callbacks=[Timer()], verbose=0, shuffle=False)
    return list(np.diff(times[args.warmup - 1 :]))


def torch_worker(args) -> list[float]:
    """Per-step seconds of a plain PyTorch eager version of the network."""
    import torch
    from torch import nn

    def unit(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def stack(cin, cout):
        return nn.Sequential(unit(cin, cout), unit(cout, cout), unit(cout, cout))

    filters = [max(4, round(f * args.width)) for f in (32, 64, 128, 256, 512)]

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            pairs = list(zip(filters[:0:-1], filters[-2::-1]))
            self.levels = nn.ModuleList(stack(below + f, f) for below, f in pairs)
            self.head = nn.Conv2d(filters[0], 1, 3, padding=1)

        def forward(self, x, skips):
            for level, skip in zip(self.levels, reversed(skips)):
                x = level(torch.cat([nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), skip], 1))
            return self.head(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            channels = [3] + filters
            self.encoder = nn.ModuleList(stack(channels[i], channels[i + 1]) for i in range(5))
            self.decoders = nn.ModuleList(Decoder() for _ in range(4))
            bottleneck = (args.size // 16) ** 2 * filters[-1]
            self.fc = nn.Sequential(
                nn.Flatten(), nn.Linear(bottleneck, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 17)
            )

        def forward(self, x):
            skips = []
            for i, level in enumerate(self.encoder):
                x = level(nn.functional.max_pool2d(x, 2) if i else x)
                skips.append(x)
            x = skips.pop()
            return [d(x, skips) for d in self.decoders], self.fc(x)

    torch.manual_seed(0)
    net = Net()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-5)
    x = torch.randn(args.batch, 3, args.size, args.size) * 50
    times = []
    for _ in range(args.warmup + args.steps):
        maps, vector = net(x)
        loss = sum((m**2).mean() for m in maps) + (vector**2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter())
    parameters = sum(p.numel() for p in net.parameters())
    print(json.dumps({"torch_parameters": parameters}), file=sys.stderr)
    return [b - a for a, b in zip(times[args.warmup - 1 :], times[args.warmup :])]


def _run_worker(config: str, args, data_file: str) -> list[float] | None:
    kind, _, variant = config.partition("/")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1" if "onednn" in variant else "0"
    command = [sys.executable, __file__, "--worker", config, "--data-file", data_file]
    command += ["--batch", str(args.batch), "--size", str(args.size), "--width", str(args.width)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(f"  {config}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _configs(args) -> list[str]:
    configs = [f"{kind}/{variant}" for kind in args.kinds for variant in args.variants]
    return configs + (["torch/eager"] if not args.no_torch else [])


def _table(args, medians: dict, samples: dict) -> str:
    images = lambda seconds: args.batch / seconds
    torch = medians.get("torch/eager")
    lines = [
        f"Training throughput, batch {args.batch}, {args.size}×{args.size}, width ×{args.width}, "
        f"median over {args.rounds} rounds of {args.steps} timed steps",
        "",
        "| configuration | images/s | ms/step | vs torch eager |",
        "|---|---:|---:|---:|",
    ]
    for config in _configs(args):
        if config not in medians:
            lines.append(f"| {config} | failed | | |")
            continue
        ratio = f"{torch / medians[config]:.2f}×" if torch else "–"
        lines.append(f"| {config} | {images(medians[config]):.2f} | {1000 * medians[config]:.0f} | {ratio} |")
    overhead = []
    for variant in args.variants:
        net, task, fed = (medians.get(f"{k}/{variant}") for k in KERAS_KINDS)
        if net and task and fed:
            overhead.append(
                f"| {variant} | {100 * (task / net - 1):+.1f} % | {100 * (fed / task - 1):+.1f} % |"
            )
    if overhead:
        lines += ["", "| variant | physics decoder + losses vs network | input pipeline vs in-memory |", "|---|---:|---:|"]
        lines += overhead
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier (1 = the paper's network)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=list(KERAS_KINDS), choices=KERAS_KINDS)
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=DEFAULT_VARIANTS)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--out", help="write the table (Markdown) here, and the samples as JSON beside it")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data-file", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, _, variant = args.worker.partition("/")
        seconds = torch_worker(args) if kind == "torch" else keras_worker(kind, variant, args, args.data_file)
        print(json.dumps(seconds))
        return 0

    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from bioface_tf.data.synth import write_synthetic

        data_file = str(write_synthetic(pathlib.Path(tmp) / "faces.h5", n=4 * args.batch, size=args.size, progress=False))
        for round_ in range(1, args.rounds + 1):
            for config in _configs(args):
                seconds = _run_worker(config, args, data_file)
                if seconds:
                    samples.setdefault(config, []).append(statistics.median(seconds))
                    print(f"round {round_}: {config:<22} {args.batch / samples[config][-1]:6.2f} img/s", flush=True)
    medians = {config: statistics.median(values) for config, values in samples.items()}
    table = _table(args, medians, samples)
    print()
    print(table)
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        facts = (
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
            f"Python {platform.python_version()}; measured {time.strftime('%Y-%m-%d %H:%M')}.\n"
            f"Command: python benchmarks/bench_training.py {' '.join(sys.argv[1:])}\n\n"
        )
        out.write_text(facts + table)
        out.with_suffix(".json").write_text(json.dumps({"seconds_per_step": samples}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
