"""Training throughput of BioFaceNet on this CPU, against PyTorch eager.

Every configuration runs in its own Python process (TensorFlow reads
``TF_ENABLE_ONEDNN_OPTS`` once, at import), and the configurations are run
in turn for several rounds (A B C D, A B C D, ...) so that a noisy, shared
machine slows them all alike; the table reports each one's median over
rounds, and the ratio of our default to PyTorch's best both from those
medians and as the median of the per-round ratios. In each process the
first ``--warmup`` steps (tracing, XLA compilation, allocator warm-up) are
not timed. Every configuration's loss must be finite and lower at the last
timed step than at the first, or the run is marked as failing that check.

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

each with oneDNN off/on and XLA off/on (``--variants``) and in each Keras
dtype policy of ``--precisions``: ``float32``, ``auto`` (what
``train.mixed_precision=auto`` picks on this machine: ``mixed_bfloat16`` on
a CPU with ``avx512_bf16`` or ``amx_bf16``, else ``float32``) or
``bfloat16`` (``mixed_bfloat16`` whatever the CPU). Under a mixed policy the
network computes in bfloat16 while the map heads, the light/camera head, the
physics decoder and the losses stay float32, as in ``bioface train``.

Every Keras configuration trains with the optimiser ``bioface train`` uses,
:class:`training.optimizers.FusedAdam` (Keras's Adam updated by
TensorFlow's fused ``ResourceApplyAdam`` kernel), and the network's
``ConvBatchNormReLU`` units as ``bioface train`` runs them (weight gradients
of the 8×8 and 4×4 levels from matrix products, see
:func:`bioface_tf.model.blocks.conv3x3_matmul_filter_gradient`).

PyTorch runs the configurations of ``--torch``, ``memory format/precision``:
``eager`` (contiguous NCHW tensors, PyTorch's default) or ``channels_last``
(NHWC, which oneDNN prefers), with ``torch.optim.Adam(fused=True)``, in ``float32`` or ``bf16``
(``torch.autocast("cpu", dtype=torch.bfloat16)`` around the forward pass;
the loss in float32). "Our default" is ``net/onednn`` (``bioface train``
runs with oneDNN on and XLA off) in the ``auto`` policy; the table compares
it with the fastest PyTorch configuration measured.

PyTorch is not a dependency of the project: it is the optional extra
``torch-comparison`` (``pip install -e ".[torch-comparison]"``, torch 2.13.0,
the version the results were measured with; on Linux add
``--extra-index-url https://download.pytorch.org/whl/cpu`` for the CPU-only
build), or pass ``--no-torch``.

    python benchmarks/bench_training.py [--rounds 3] [--steps 8] [--warmup 3] \\
        [--kinds net] [--variants onednn] [--precisions float32 auto] \\
        [--torch eager/float32 eager/bf16 channels_last/bf16] [--out benchmarks/results/training_cpu.md]

Prints a Markdown table; with ``--out`` also writes it (and a JSON file of
every measurement beside it) with the machine's facts.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERAS_KINDS = ("net", "task", "task+data")
DEFAULT_VARIANTS = ("plain", "xla", "onednn", "onednn+xla")
PRECISIONS = ("float32", "auto", "bfloat16")
TORCH_CONFIGS = ("eager/float32", "eager/bf16", "channels_last/float32", "channels_last/bf16")
"""PyTorch eager configurations, ``memory format/precision``: ``eager`` is the default (contiguous NCHW) layout."""
DEFAULT_CONFIG = "net/onednn"
"""Our default: the network as ``bioface train`` runs it (oneDNN on, XLA off), in the ``auto`` policy."""
CPU_FLAGS = (
    "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
)
"""The /proc/cpuinfo flags that decide which kernels TensorFlow/oneDNN and PyTorch can use."""


def keras_worker(kind: str, variant: str, policy: str, args, data_file: str | None) -> dict:
    """Per-step seconds and losses of ``model.fit`` for one configuration (this process)."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.config.set_dtype_policy(policy)

    from bioface_tf.losses import BioFaceLoss
    from bioface_tf.model import BioFaceBackbone, build_bioface
    from training.optimizers import FusedAdam
    from training.train import training_pairs

    b, s = args.batch, args.size
    rng = np.random.default_rng(0)
    xla = "xla" in variant
    times, means = [], []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            means.append(float(logs["loss"]))  # the running mean over the epoch so far
            times.append(time.perf_counter())

    if kind == "net":
        model = BioFaceBackbone(image_size=s, width_multiplier=args.width)
        model.compile(FusedAdam(1e-5), loss={n: "mse" for n in model.output}, jit_compile=xla)
        x = rng.normal(0, 50, (b, s, s, 3)).astype("float32")
        y = {n: np.zeros((b,) + tuple(model.output[n].shape[1:]), "float32") for n in model.output}
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
    else:
        model = build_bioface(s, "full", width_multiplier=args.width)
        model.compile(FusedAdam(1e-5), loss=BioFaceLoss(), jit_compile=xla)
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
    losses = [(i + 1) * m - i * (means[i - 1] if i else 0.0) for i, m in enumerate(means)]
    return {"seconds": [float(t) for t in np.diff(times[args.warmup - 1 :])], "losses": losses}


def torch_worker(variant: str, precision: str, args) -> dict:
    """Per-step seconds and losses of a plain PyTorch eager version of the network."""
    import contextlib

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

    channels_last = variant == "channels_last"
    torch.manual_seed(0)
    net = Net()
    x = torch.randn(args.batch, 3, args.size, args.size) * 50
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    # PyTorch's fused Adam (one kernel per step, on CPU since torch 2.4), as our side uses TensorFlow's fused one.
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-5, fused=True)
    if precision == "bf16":
        autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext
    times, losses = [], []
    for _ in range(args.warmup + args.steps):
        with autocast():
            maps, vector = net(x)
        # The loss in float32, as Keras computes it under a mixed policy.
        loss = sum((m.float() ** 2).mean() for m in maps) + (vector.float() ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        times.append(time.perf_counter())
    parameters = sum(p.numel() for p in net.parameters())
    print(json.dumps({"torch_parameters": parameters, "torch_threads": torch.get_num_threads()}), file=sys.stderr)
    seconds = [b - a for a, b in zip(times[args.warmup - 1 :], times[args.warmup :])]
    return {"seconds": seconds, "losses": losses}


def _run_worker(config: str, args, data_file: str) -> dict | None:
    kind, variant, _ = config.split("/")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1" if "onednn" in variant else "0"
    command = [sys.executable, __file__, "--worker", config, "--data-file", data_file]
    command += ["--batch", str(args.batch), "--size", str(args.size), "--width", str(args.width)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        print(f"  {config}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _policy(setting: str) -> str:
    """The Keras dtype policy of ``--precisions`` ``setting`` on this machine (as ``bioface train`` picks it)."""
    from training.environment import choose_precision, cpu_flags

    if setting == "float32":
        return "float32"
    return choose_precision(setting, has_gpu=False, flags=cpu_flags()).policy


def _configs(args) -> list[str]:
    """``kind/variant/precision`` of every configuration, in the order each round runs them."""
    policies = list(dict.fromkeys(_policy(p) for p in args.precisions))
    configs = [f"{kind}/{variant}/{policy}" for kind in args.kinds for variant in args.variants for policy in policies]
    return configs + ([] if args.no_torch else [f"torch/{c}" for c in args.torch])


def _loss_check(losses: list[float], warmup: int) -> tuple[bool, str]:
    """Whether the loss is finite throughout and fell over the timed steps (from the last warm-up step's
    loss to the last timed step's), and ``before → last``."""
    timed = losses[warmup - 1 :]
    finite = all(math.isfinite(v) for v in losses)
    return finite and timed[-1] < timed[0], f"{timed[0]:.4g} → {timed[-1]:.4g}"


def _label(config: str, args) -> str:
    kind, variant, precision = config.split("/")
    if kind == "torch":
        memory = ", channels_last" if variant == "channels_last" else ""
        return f"PyTorch eager, {'bf16 autocast' if precision == 'bf16' else 'float32'}{memory}"
    return f"Keras {kind}/{variant}, {precision}"


def _table(args, runs: dict) -> tuple[str, dict]:
    """The Markdown table and the headline figures."""
    images = lambda seconds: args.batch / seconds
    medians = {c: statistics.median(r["step"] for r in rounds) for c, rounds in runs.items() if rounds}
    default = f"{DEFAULT_CONFIG}/{_policy('auto')}"
    torch_best = min((c for c in medians if c.startswith("torch/")), key=medians.get, default=None)
    headline = {"default": default, "torch_best": torch_best}
    lines = [
        f"Training throughput (forward + backward + Adam step), batch {args.batch}, {args.size}×{args.size}, "
        f"width ×{args.width}; per round the median of {args.steps} timed steps ({args.warmup} warm-up steps "
        f"not timed), then the median over {args.rounds} interleaved rounds.",
        "",
        "| configuration | | images/s | ms/step | vs PyTorch's best | loss, end of warm-up → last timed step | finite and falling |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for config in _configs(args):
        if config not in medians:
            lines.append(f"| `{config}` | {_label(config, args)} | failed | | | | |")
            continue
        ratio = f"{medians[torch_best] / medians[config]:.2f}×" if torch_best else "–"
        checks = [_loss_check(r["losses"], args.warmup) for r in runs[config]]
        falling = "yes" if all(ok for ok, _ in checks) else f"**no** ({sum(not ok for ok, _ in checks)} of {len(checks)} rounds)"
        marks = " **(our default)**" if config == default else (" (PyTorch's best)" if config == torch_best else "")
        lines.append(
            f"| `{config}`{marks} | {_label(config, args)} | {images(medians[config]):.2f} | {1000 * medians[config]:.0f} "
            f"| {ratio} | {checks[-1][1]} | {falling} |"
        )
    if default in medians and torch_best:
        per_round = [
            t["step"] / d["step"] for d, t in zip(runs[default], runs[torch_best]) if d["round"] == t["round"]
        ]
        ratio = medians[torch_best] / medians[default]
        per_round_median = statistics.median(per_round) if per_round else float("nan")
        met = ratio >= args.goal and per_round_median >= args.goal
        headline.update(ratio=ratio, per_round=per_round, per_round_median=per_round_median, met=met)
        lines += [
            "",
            f"Our default (`{default}`: what `train.mixed_precision=auto` picks here, oneDNN on, XLA off) against "
            f"PyTorch's best (`{torch_best}`): **{ratio:.2f}×** from the medians; per round "
            f"{', '.join(f'{r:.2f}×' for r in per_round)} (median {per_round_median:.2f}×). "
            f"Goal ≥ {args.goal:.1f}×: **{'met' if met else 'not met'}**.",
        ]
        loads = [r["load"] for rounds in runs.values() for r in rounds]
        lines.append(
            f"Load average (1 min) when each configuration started: {min(loads):.2f} to {max(loads):.2f} "
            f"(median {statistics.median(loads):.2f}) on {os.cpu_count()} CPUs."
        )
        for precision in ("float32",):
            keras_f32, torch_f32 = f"{DEFAULT_CONFIG}/{precision}", f"torch/eager/{precision}"
            if keras_f32 in medians and torch_f32 in medians:
                lines.append(
                    f"Like for like in float32: Keras {images(medians[keras_f32]):.2f} against PyTorch "
                    f"{images(medians[torch_f32]):.2f} images/s ({medians[torch_f32] / medians[keras_f32]:.2f}×)."
                )
        bf16 = [c for c in medians if c.endswith("/mixed_bfloat16") or c.endswith("/bf16")]
        for config in bf16:
            base = config.rsplit("/", 1)[0] + "/float32"
            if base in medians:
                lines.append(f"bf16 speed-up of `{config.rsplit('/', 1)[0]}`: {medians[base] / medians[config]:.2f}×.")
    overhead = []
    for variant in args.variants:
        for policy in dict.fromkeys(_policy(p) for p in args.precisions):
            net, task, fed = (medians.get(f"{k}/{variant}/{policy}") for k in KERAS_KINDS)
            if net and task and fed:
                overhead.append(
                    f"| {variant}, {policy} | {100 * (task / net - 1):+.1f} % | {100 * (fed / task - 1):+.1f} % |"
                )
    if overhead:
        lines += ["", "| variant | physics decoder + losses vs network | input pipeline vs in-memory |", "|---|---:|---:|"]
        lines += overhead
    return "\n".join(lines) + "\n", headline


def _machine(load: tuple[float, float], torch_threads) -> str:
    from training.environment import cpu_flags

    model = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    present = [f for f in CPU_FLAGS if f in flags]
    absent = [f for f in CPU_FLAGS if f not in flags]
    versions = []
    for name in ("tensorflow", "keras", "torch"):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    cores = os.cpu_count()
    return (
        f"Machine: {model} ({platform.machine()}), {cores} logical CPUs; CPU flags present: "
        f"{', '.join(present) or 'none'}; absent: {', '.join(absent) or 'none'}.  \n"
        f"Software: Python {platform.python_version()}, {', '.join(versions)}; PyTorch threads: {torch_threads}.  \n"
        f"Load average (1 min) {load[0]:.2f} at the start and {load[1]:.2f} at the end, on {cores} CPUs: "
        "the figures are from a shared machine where other jobs ran at the same time, so they are noisy; "
        "the interleaved rounds spread the noise over every configuration, but PyTorch's OpenMP threads lose "
        "far more than TensorFlow's thread pool when the CPUs are oversubscribed, so a load above the CPU count "
        "favours Keras.\n"
    )


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
    parser.add_argument("--precisions", nargs="+", default=["float32", "auto"], choices=PRECISIONS,
                        help="Keras dtype policies (auto: as train.mixed_precision=auto picks on this machine)")
    parser.add_argument("--torch", nargs="+", default=list(TORCH_CONFIGS[:2]), choices=TORCH_CONFIGS,
                        help="PyTorch configurations, memory format/precision (eager = contiguous NCHW)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--goal", type=float, default=1.2, help="wanted ratio of our default to PyTorch's best")
    parser.add_argument("--out", help="write the table (Markdown) here, and the samples as JSON beside it")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warmup < 1:
        parser.error("--warmup must be at least 1 (the first step's end starts the clock)")

    if args.worker:
        kind, variant, precision = args.worker.split("/")
        if kind == "torch":
            result = torch_worker(variant, precision, args)
        else:
            result = keras_worker(kind, variant, precision, args, args.data_file)
        print(json.dumps(result))
        return 0

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    start_load = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {config: [] for config in _configs(args)}
    with tempfile.TemporaryDirectory() as tmp:
        data_file = ""
        if "task+data" in args.kinds:
            from bioface_tf.data.synth import write_synthetic

            data_file = str(write_synthetic(pathlib.Path(tmp) / "faces.h5", n=4 * args.batch, size=args.size, progress=False))
        for round_ in range(1, args.rounds + 1):
            for config in runs:
                load = os.getloadavg()[0]
                result = _run_worker(config, args, data_file)
                if result:
                    step = statistics.median(result["seconds"])
                    runs[config].append({"round": round_, "step": step, "load": load, **result})
                    ok, losses = _loss_check(result["losses"], args.warmup)
                    print(
                        f"round {round_}: {config:<34} {args.batch / step:6.2f} img/s  loss {losses}  load {load:.2f}"
                        f"{'' if ok else '  (NOT finite and falling)'}",
                        flush=True,
                    )
    end_load = os.getloadavg()[0]
    torch_threads = _torch_threads() if not args.no_torch else "–"
    table, headline = _table(args, runs)
    machine = _machine((start_load, end_load), torch_threads)
    print()
    print(table)
    print(machine)
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        command = f"Command: `nice -n 10 python benchmarks/bench_training.py {' '.join(sys.argv[1:])}`  \n"
        measured = f"Measured {time.strftime('%Y-%m-%d %H:%M')}.\n\n"
        out.write_text(command + measured + table + "\n" + machine)
        record = {"runs": runs, "headline": headline, "load_average": [start_load, end_load], "argv": sys.argv[1:]}
        out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _torch_threads():
    done = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], capture_output=True, text=True)
    return done.stdout.strip() or "–"


if __name__ == "__main__":
    sys.exit(main())
