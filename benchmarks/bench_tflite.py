"""Parity and cost of the TFLite bundles (issue 7), on the LiteRT interpreter.

For each model (mobile, full) and each quantization variant (float32,
float16, dynamic, int8) the bundle is exported with
:func:`mobile_export.export.export_bundle` and measured against the Keras
model on held-out synthetic faces:

* file sizes (encoder, renderer, bundle);
* CPU latency at batch 1 with 1 and 2 interpreter threads, median of
  ``--runs`` calls of the signature runner (Python call overhead included);
  the renderer at the model's size (64×64);
* reconstruction PSNR and edited-image PSNR (sRGB in [0, 1]) against the
  Keras model's, and the mean absolute error of the melanin and haemoglobin
  maps (map units, range [-1, 1]) inside the face masks.

Then the renderer alone: the skin reflectance table as a rank-K spectral
basis (K = 4 … 16, and the exact table) under each weight storage, against
the exact Keras renderer on the mobile model's maps; and what a naive
full-integer conversion of the renderer does.

    python benchmarks/bench_tflite.py --mobile /tmp/runs/mobile_2000/model.keras \\
        --out benchmarks/results/tflite_cpu.md [--full M.keras] [--runs 50] [--keep DIR]

Without ``--full`` the full variant is untrained (its conversion error and
cost are what it measures). ``--keep DIR`` leaves the bundles in DIR.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from bioface_tf.editing import Edit, edit_parameters

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
EDIT = Edit(melanin=0.3, haemoglobin=0.2, specular=0.5)
EVAL_SEED, CALIBRATION_SEED, FULL_SEED = 20260, 20261, 0
RANKS = (4, 6, 8, 12, 16, None)


def synthetic_faces(n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    from bioface_tf.data import CelebAFaces
    from bioface_tf.data.synth import write_synthetic

    with tempfile.TemporaryDirectory() as folder:
        path = write_synthetic(pathlib.Path(folder) / "faces.h5", n, size, seed, progress=False)
        with CelebAFaces([path], image_size=None) as faces:
            return faces.read(np.arange(n))


def psnr(a, b) -> float:
    return float(-10 * np.log10(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def median_ms(call, runs: int) -> float:
    call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def runner(path, signature: str, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path), num_threads=threads).get_signature_runner(signature)


def latencies(bundle, params: dict, image: np.ndarray, runs: int) -> dict[str, float]:
    """Median ms of encoder and renderer at batch 1, 1 and 2 threads."""
    from mobile_export.runtime import NO_EDIT

    render_inputs = {k: v[:1] for k, v in params.items()}
    render_inputs.update({k: np.full((1, 1), v, np.float32) for k, v in NO_EDIT.items()})
    out = {}
    for threads in (1, 2):
        encode = runner(bundle.encoder, "encode", threads)
        render = runner(bundle.renderer, "render", threads)
        out[f"encoder_{threads}t"] = median_ms(lambda: encode(image=image[:1]), runs)
        out[f"renderer_{threads}t"] = median_ms(lambda: render(**render_inputs), runs)
    return out


def masked_mae(a, b, mask) -> float:
    inside = np.asarray(mask) > 0.5
    return float(np.abs(np.asarray(a) - np.asarray(b))[inside].mean())


def measure_bundle(model, variant, quantize, faces, calibration, runs, keep, **options):
    from bioface_tf.analysis import analyse, decoder_of
    from bioface_tf.editing import render
    from mobile_export.export import export_bundle
    from mobile_export.runtime import LiteBioFace

    label = quantize + "".join(f", {k.replace('_', ' ')} {v}" for k, v in options.items())
    folder = pathlib.Path(keep or tempfile.mkdtemp()) / f"{variant}_{quantize}{'_mixed' if options else ''}"
    start = time.perf_counter()
    bundle = export_bundle(
        model, folder, quantize, calibration, calibration_note="synthetic faces, seed 20261", **options
    )
    export_s = time.perf_counter() - start
    expected = analyse(model, faces["image"], faces["mask"])
    expected_edit = render(edit_parameters(expected.params, EDIT), decoder_of(model))
    lite = LiteBioFace(folder)
    got = lite.analyse(faces["image"], faces["mask"])
    row = {
        "model": variant,
        "quantize": label,
        "encoder_mb": bundle.encoder.stat().st_size / 1e6,
        "renderer_mb": bundle.renderer.stat().st_size / 1e6,
        "export_s": export_s,
        "reconstruction_psnr": psnr(got.reconstruction, expected.reconstruction),
        "edit_psnr": psnr(lite.render(got.params, EDIT), expected_edit),
        "fmel_mae": masked_mae(got.params["fmel"], expected.params["fmel"], faces["mask"]),
        "fblood_mae": masked_mae(got.params["fblood"], expected.params["fblood"], faces["mask"]),
        **latencies(bundle, got.params, faces["image"], runs),
    }
    print(row, flush=True)
    return row, expected.params


def sensitivity(model, variant: str, faces) -> dict:
    """How far the Keras model's own maps move under perturbations as small as quantization's.

    ``float16 weights``: every backbone weight rounded to float16 (the
    float16 variant's storage) in Keras; ``input ±0.5/255``: the image
    perturbed by up to half an 8-bit level, uniformly.
    """
    from bioface_tf.analysis import analyse

    expected = analyse(model, faces["image"], faces["mask"]).params
    weights = model.backbone.get_weights()
    model.backbone.set_weights([w.astype(np.float16).astype(np.float32) for w in weights])
    rounded = analyse(model, faces["image"], faces["mask"]).params
    model.backbone.set_weights(weights)
    noise = np.random.default_rng(0).uniform(-0.5 / 255, 0.5 / 255, faces["image"].shape)
    noisy = analyse(model, np.clip(faces["image"] + noise, 0, 1).astype(np.float32), faces["mask"]).params
    row = {"model": variant}
    for label, params in (("float16 weights", rounded), ("input ±0.5/255", noisy)):
        for key in ("fmel", "fblood"):
            row[f"{label} {key}"] = masked_mae(params[key], expected[key], faces["mask"])
    print(row, flush=True)
    return row


def skin_rank_rows(params: dict, runs: int) -> list[dict]:
    """The renderer with a rank-K skin table, against the exact Keras renderer."""
    from mobile_export.renderer import build_renderer
    from mobile_export.runtime import NO_EDIT
    from mobile_export.tflite import convert

    offsets = {"melanin_offset": EDIT.melanin, "haemoglobin_offset": EDIT.haemoglobin, "specular_scale": EDIT.specular}
    reference = build_renderer()
    batch = len(params["fmel"])
    inputs = [
        {**{k: v[i : i + 1] for k, v in params.items()}, **{k: np.full((1, 1), x, np.float32) for k, x in offsets.items()}}
        for i in range(batch)
    ]
    expected = np.concatenate([reference(x)["srgb"].numpy() for x in inputs])
    rows = []
    for rank in RANKS:
        model = build_renderer(skin_spectral_rank=rank)
        for quantize in ("float32", "float16", "dynamic"):
            flatbuffer = convert(model, "render", quantize)
            with tempfile.NamedTemporaryFile(suffix=".tflite") as handle:
                handle.write(flatbuffer)
                handle.flush()
                render = runner(handle.name, "render", 1)
                got = np.concatenate([render(**x)["srgb"] for x in inputs])
                identity = {**inputs[0], **{k: np.full((1, 1), v, np.float32) for k, v in NO_EDIT.items()}}
                ms = median_ms(lambda: render(**identity), runs)
            row = {"rank": rank or "exact", "quantize": quantize, "mb": len(flatbuffer) / 1e6,
                   "psnr": psnr(got, expected), "ms_1t": ms}
            print(row, flush=True)
            rows.append(row)
    return rows


def naive_int8_renderer(params: dict, calibration_params: dict) -> list[str]:
    """What full-integer quantization does to the spectral renderer."""
    import keras
    import tensorflow as tf

    from mobile_export.renderer import build_renderer
    from mobile_export.runtime import NO_EDIT

    from ai_edge_litert.interpreter import Interpreter

    model = build_renderer()
    no_edit = {k: np.full((1, 1), v, np.float32) for k, v in NO_EDIT.items()}

    def representative():
        for i in range(len(calibration_params["fmel"])):
            yield {**{k: v[i : i + 1] for k, v in calibration_params.items()}, **no_edit}

    size = params["fmel"].shape[1]
    spec = {t.name: tf.TensorSpec((1, *t.shape[1:]), tf.float32, name=t.name) for t in model.inputs}
    spec.update({k: tf.TensorSpec((1, size, size, 1), tf.float32, name=k) for k in ("fmel", "fblood", "shading", "specmask")})
    inputs = [{**{k: v[i : i + 1] for k, v in params.items()}, **no_edit} for i in range(len(params["fmel"]))]
    expected = np.concatenate([model(x)["srgb"].numpy() for x in inputs])
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("render", lambda x: model(x, training=False), input_signature=[spec])
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["render"])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        for denied in ([], ["DIV"]):
            options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=denied) if denied else None
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=representative, debug_options=options
            )
            flatbuffer = debugger.get_nondebug_quantized_model()
            label = "full integer" + (f", {', '.join(denied)} kept float" if denied else "")
            try:
                render = Interpreter(model_content=flatbuffer).get_signature_runner("render")
                got = np.concatenate([render(**x)["srgb"] for x in inputs])
                lines.append(f"| {label} | {len(flatbuffer) / 1e6:.2f} | {psnr(got, expected):.1f} dB |")
            except RuntimeError as err:
                lines.append(f"| {label} | {len(flatbuffer) / 1e6:.2f} | fails at run time: `{str(err).splitlines()[0]}` |")
            print(lines[-1], flush=True)
    return lines


def machine() -> str:
    import ai_edge_litert
    import tensorflow as tf

    load = os.getloadavg()
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"(1/5/15 min) at the end of the run — shared with other jobs, so latencies are noisy; "
        f"TensorFlow {tf.__version__} (converter), ai-edge-litert {getattr(ai_edge_litert, '__version__', '2.3.0')}, "
        f"Python {platform.python_version()}"
    )


def report(rows, sensitivities, rank_rows, naive_lines, args, mobile_note, full_note) -> str:
    lines = [
        "# TFLite bundles: parity with Keras and CPU cost",
        "",
        f"`{args.command}`",
        "",
        f"Machine: {machine()}.",
        "",
        f"Models: mobile — {mobile_note}; full — {full_note}. Evaluation: {args.faces} held-out synthetic "
        f"64×64 faces (bioface synth, seed {EVAL_SEED}); int8 calibrated on {args.calibration_faces} other "
        f"synthetic faces (seed {CALIBRATION_SEED}). Edit: melanin +{EDIT.melanin}, haemoglobin "
        f"+{EDIT.haemoglobin}, specular ×{EDIT.specular}. PSNR on sRGB in [0, 1] against the Keras model; "
        "map MAE inside the face masks in map units ([-1, 1]). Latency: median of "
        f"{args.runs} signature-runner calls at batch 1 (Python call overhead included), renderer at 64×64.",
        "",
        "| model | variant | encoder MB | renderer MB | bundle MB | encoder ms 1t | encoder ms 2t | renderer ms 1t "
        "| renderer ms 2t | reconstruction PSNR | edited PSNR | fmel MAE | fblood MAE |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['quantize']} | {r['encoder_mb']:.2f} | {r['renderer_mb']:.2f} "
            f"| {r['encoder_mb'] + r['renderer_mb']:.2f} | {r['encoder_1t']:.2f} | {r['encoder_2t']:.2f} "
            f"| {r['renderer_1t']:.2f} | {r['renderer_2t']:.2f} | {r['reconstruction_psnr']:.1f} "
            f"| {r['edit_psnr']:.1f} | {r['fmel_mae']:.4f} | {r['fblood_mae']:.4f} |"
        )
    lines += [
        "",
        "In every variant the renderer computes in float32: `int8` bundles pair the int8 encoder (its input normalisation kept float32) "
        "with the dynamic-range renderer (int8-stored constants).",
        "",
        "## How sensitive the Keras encoders are",
        "",
        "Map MAE (inside the masks) of the Keras model against itself, under perturbations as small as "
        "quantization's: every backbone weight rounded to float16, or the input image perturbed uniformly "
        "by up to half an 8-bit level.",
        "",
        "| model | float16 weights: fmel MAE | fblood MAE | input ±0.5/255: fmel MAE | fblood MAE |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {r['model']} | {r['float16 weights fmel']:.4f} | {r['float16 weights fblood']:.4f} "
            f"| {r['input ±0.5/255 fmel']:.4f} | {r['input ±0.5/255 fblood']:.4f} |"
            for r in sensitivities
        ],
        "",
        "## Renderer: skin table as a rank-K spectral basis",
        "",
        "The mobile model's maps of the evaluation faces, edited as above, rendered by the TFLite renderer "
        "against the exact Keras renderer (float32, exact 256×256×33 table).",
        "",
        "| skin table | weights | renderer MB | edited PSNR | ms 1t |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rank_rows:
        name = "exact" if r["rank"] == "exact" else f"rank {r['rank']}"
        lines.append(f"| {name} | {r['quantize']} | {r['mb']:.2f} | {r['psnr']:.1f} | {r['ms_1t']:.2f} |")
    lines += [
        "",
        "## Renderer: naive full-integer conversion",
        "",
        "TFLITE_BUILTINS_INT8 with float fallback, calibrated on the mobile model's maps of the calibration "
        "faces; rendered against the Keras renderer on the evaluation faces, no edit.",
        "",
        "| conversion | MB | result |",
        "|---|---:|---|",
        *naive_lines,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mobile", required=True, help="a trained mobile BioFaceNet (.keras)")
    parser.add_argument("--full", default=None, help="a full BioFaceNet (.keras); default: untrained")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--faces", type=int, default=16)
    parser.add_argument("--calibration-faces", type=int, default=100)
    parser.add_argument("--out", default=None)
    parser.add_argument("--keep", default=None, help="keep the bundles in this folder")
    args = parser.parse_args()
    args.command = "python benchmarks/bench_tflite.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k not in ("out", "keep")
    ) + (f" --out {args.out}" if args.out else "")

    import keras

    from bioface_tf.analysis import load_model
    from bioface_tf.model import build_bioface

    mobile = load_model(args.mobile)
    size = mobile.image_size
    if args.full:
        full, full_note = load_model(args.full), f"`{args.full}`"
    else:
        keras.utils.set_random_seed(FULL_SEED)
        full, full_note = build_bioface(size, "full"), f"untrained (initial weights, seed {FULL_SEED})"
    faces = synthetic_faces(args.faces, size, EVAL_SEED)
    calibration = synthetic_faces(args.calibration_faces, size, CALIBRATION_SEED)
    rows = []
    for quantize in QUANTIZATIONS:
        row, mobile_params = measure_bundle(mobile, "mobile", quantize, faces, calibration["image"], args.runs, args.keep)
        rows.append(row)
    rows.append(measure_bundle(
        mobile, "mobile", "dynamic", faces, None, args.runs, args.keep, encoder_quantize="float32", skin_spectral_rank=6
    )[0])
    rows.append(measure_bundle(
        mobile, "mobile", "int8", faces, calibration["image"], args.runs, args.keep, skin_spectral_rank=6
    )[0])
    from bioface_tf.analysis import analyse

    calibration_params = analyse(mobile, calibration["image"][:32], calibration["mask"][:32]).params
    rank_rows = skin_rank_rows(mobile_params, args.runs)
    naive_lines = naive_int8_renderer(mobile_params, calibration_params)
    for quantize in QUANTIZATIONS:
        rows.append(measure_bundle(full, "full", quantize, faces, calibration["image"], args.runs, args.keep)[0])
    sensitivities = [sensitivity(mobile, "mobile", faces), sensitivity(full, "full", faces)]
    text = report(rows, sensitivities, rank_rows, naive_lines, args, f"`{args.mobile}`", full_note)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
