"""The main job on built-in data: render faces, train, analyse, edit, report.

:func:`run_demo` needs nothing but the package:

1. render a small set of faces with known ground truth through the physics
   decoder (:mod:`bioface_tf.data.synth`), and a few more held out;
2. train the mobile BioFaceNet on them on the CPU for a few minutes
   (:func:`train_briefly`);
3. analyse the held-out faces (:func:`bioface_tf.analysis.analyse_files`):
   per-face maps, ``params.json`` and the figure grid; compare the
   estimated light and camera with the truth;
4. edit them: melanin +0.4 and haemoglobin +0.3 (:mod:`bioface_tf.editing`);
5. export the on-device renderer to TFLite when the converter is installed;
6. write ``report.html`` linking all of it.

When a shipped model is installed (:mod:`bioface_tf.pretrained`), the report
shows it beside the demo's own short run, both evaluated on the same
held-out faces. Map agreement is ``bioface evaluate``'s definition
(:func:`map_agreement`): Pearson r per face inside the mask, averaged over
faces — never pixels pooled over faces, which would count differences of
skin type between faces as skill at the maps.

The defaults finish in under 15 minutes on a 2-core CPU; ``faces`` and
``steps`` make it as small as a test needs.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import platform
import time

import numpy as np

from bioface_tf.errors import BioFaceError

DEFAULT_FACES = 512
DEFAULT_STEPS = 1500
DEFAULT_MINUTES = 8.0
HELD_OUT = 6
EDIT_ROWS = 4
IMAGE_SIZE = 64
MELANIN_EDIT = 0.4
HAEMOGLOBIN_EDIT = 0.3
LOG_EVERY = 25
STAGES = 6
MAP_LABELS = {
    "r_melanin": "melanin",
    "r_haemoglobin": "haemoglobin",
    "r_shading": "diffuse shading",
    "r_specular": "specular shading",
}
"""Report labels of the map-agreement figures of :func:`training.evaluate.evaluate`."""
DEMO_OVERRIDES = ("model.variant=mobile", "train.batch_size=16", "train.learning_rate=0.001")
"""The ``report`` preset (the known report's loss weights) for a few CPU minutes: the
mobile network, small batches, a 100x higher learning rate."""

FULL_RUN = """\
# the CelebA release of Shu et al. (CVPR 2017): zx_7_d10_inmc_celebA_NN.hdf5 + zx_7_d3_lrgb_celebA_NN.hdf5
bioface inspect 'data/zx_7_d10_inmc_celebA_*.hdf5'
bioface train --preset report --data 'data/zx_7_d10_inmc_celebA_*.hdf5' --out runs/report
bioface analyze my_photos/ --model runs/report/model.keras --out analysis/
bioface edit photo.jpg --model runs/report/model.keras --melanin +0.4 --haemoglobin +0.3 --out edited.png"""

FULL_RUN_NOTE = (
    "A full run trains the full network (28 M parameters) on the CelebA files: about 9000 faces "
    "(a few HDF5 files of ~2500 each), batch 25, learning rate 1e-5, 10 epochs (the 'report' preset; "
    "'paper' has the published weights). That is hours on a GPU, not minutes on a CPU; the demo "
    "instead trains the 0.4 M-parameter mobile variant on rendered faces at a 100x higher learning "
    "rate, enough to show every output but not the quality of a full run."
)


@dataclasses.dataclass
class TrainingLog:
    """What :func:`train_briefly` did: steps, seconds and the loss along the way."""

    steps: int
    seconds: float
    step_numbers: list[int]
    losses: list[float]
    stopped_by_time: bool


@dataclasses.dataclass
class ShippedModel:
    """The shipped default model (:mod:`bioface_tf.pretrained`), loaded, with its card."""

    name: str
    path: pathlib.Path
    model: object
    card: dict


@dataclasses.dataclass
class DemoResult:
    """What :func:`run_demo` wrote (by name), how long it took, how training went."""

    files: dict[str, pathlib.Path]
    seconds: float
    training: TrainingLog


def demo_preset(steps: int, seed: int = 0):
    """The demo's training configuration: the ``report`` preset with :data:`DEMO_OVERRIDES`."""
    from training.presets import load_preset

    return load_preset(
        "report", [*DEMO_OVERRIDES, "train.epochs=1", f"train.steps_per_epoch={steps}", f"train.seed={seed}"]
    )


def equivalent_train_command(preset, data: str = "faces.h5") -> str:
    """The ``bioface train`` command line that trains with ``preset``'s demo settings."""
    sets = " ".join(f"--set {o}" for o in DEMO_OVERRIDES)
    return (f"bioface train --preset report {sets} --epochs 1 --steps {preset.train.steps_per_epoch} "
            f"--data {data} --out runs/demo")


def train_briefly(faces_path, preset, seconds: float, progress: bool = True):
    """Train as ``preset`` says for at most ``seconds`` (tracing excluded).

    The model, optimiser, loss and input pipeline are those of ``bioface
    train`` (:func:`training.train.build_and_compile`,
    :func:`training.train.training_pairs`); the demo adds the time budget
    and a progress bar over the steps.

    Args:
        faces_path: an HDF5 file of faces (``bioface synth`` output).
        preset: a :class:`training.presets.Preset` (see :func:`demo_preset`);
            ``train.steps_per_epoch`` is the most steps.
        seconds: the time budget for the steps.
        progress: show a progress bar.

    Returns:
        ``(model, TrainingLog)``.
    """
    import keras
    from tqdm import tqdm

    from bioface_tf.data import CelebAFaces
    from bioface_tf.data.pipeline import make_dataset
    from training.train import build_and_compile, training_pairs

    settings = preset.train
    steps = settings.steps_per_epoch
    keras.utils.set_random_seed(settings.seed)
    faces = CelebAFaces([faces_path], image_size=preset.model.image_size)
    if len(faces) < settings.batch_size:
        raise BioFaceError(f"{faces_path}: {len(faces)} faces cannot fill one batch of {settings.batch_size}")
    dataset = make_dataset(
        faces, batch_size=settings.batch_size, preprocessing=settings.preprocessing, flip=settings.flip,
        seed=settings.seed, drop_remainder=True,
    )
    model = build_and_compile(preset)
    log = TrainingLog(0, 0.0, [], [], False)

    class Budget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.bar = tqdm(total=steps, desc="training (mobile BioFaceNet)", unit="step", disable=not progress)
            self.start = None

        def on_train_batch_end(self, batch, logs=None):
            if self.start is None:
                self.start = time.perf_counter()
            log.steps = batch + 1
            loss = float(logs["loss"]) if logs and "loss" in logs else float("nan")
            if log.steps % LOG_EVERY == 0 or log.steps == 1:
                log.step_numbers.append(log.steps)
                log.losses.append(loss)
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3g}")
            if time.perf_counter() - self.start > seconds:
                log.stopped_by_time = True
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            self.bar.close()
            log.seconds = 0.0 if self.start is None else time.perf_counter() - self.start

    model.fit(training_pairs(dataset).repeat(), epochs=1, steps_per_epoch=steps, callbacks=[Budget()], verbose=0,
              shuffle=False)
    return model, log


def _export_tflite(model, out: pathlib.Path) -> tuple[list[pathlib.Path], str]:
    """Export the TFLite editor (encoder + renderer) or, without the exporter, the renderer.

    Returns:
        ``(paths written, a sentence for the report)``; no paths when the
        export failed (the sentence says why).
    """
    try:
        from mobile_export.export import export_bundle
    except ImportError:
        export_bundle = None
    try:
        if export_bundle is not None:
            bundle = export_bundle(model, out / "tflite_editor")
            paths = [bundle.encoder, bundle.renderer, bundle.metadata]
            size = sum(p.stat().st_size for p in paths) / 1e6
            return paths, (
                f"Exported the TFLite editor ({size:.1f} MB): encoder.tflite (photo -> maps, light, camera), "
                "renderer.tflite (maps + edit offsets -> image) and metadata.json; run it with bioface-lite."
            )
        from mobile_export.renderer import build_renderer
        from mobile_export.tflite import convert

        path = out / "renderer.tflite"
        path.write_bytes(convert(build_renderer(), "render"))
    except Exception as err:  # the converter raises many kinds; the demo goes on without it
        return [], f"Not exported: conversion failed ({type(err).__name__}: {err})."
    return [path], (
        f"Exported the on-device renderer (maps + edit offsets -> image; {path.stat().st_size / 1e6:.1f} MB). "
        "The encoder half of the TFLite editor comes with the export issue ('bioface export')."
    )


def _ground_truth_table(faces_path, names: list[str]) -> list[list[str]]:
    """Estimated vs true illuminant and camera for the analysed held-out faces."""
    from bioface_tf import spectra
    from bioface_tf.analysis import cct_kelvin, nearest_camera
    from bioface_tf.data import CelebAFaces

    rows = [["face", "cct (K) est / true", "main illuminant est / true", "nearest camera est / true"]]
    with CelebAFaces([faces_path], image_size=None) as faces:
        truth = faces.read(np.arange(len(names)), ground_truth=True)
    for i, name in enumerate(names):
        record = json.loads((pathlib.Path(name) / "params.json").read_text())
        weights = record["light_weights"]
        rows.append([
            pathlib.Path(name).name,
            f"{record['cct_kelvin']:.0f} / {float(cct_kelvin(truth['gt_cct'][i, 0])):.0f}",
            f"{max(weights, key=weights.get)} / {spectra.ILLUMINANT_NAMES[int(np.argmax(truth['gt_light_weights'][i]))]}",
            f"{record['nearest_camera']} / {nearest_camera(truth['gt_b'][i])[0]}",
        ])
    return rows


def map_agreement(params: dict[str, np.ndarray], truth: dict[str, np.ndarray], mask: np.ndarray
                  ) -> dict[str, float]:
    """Agreement of estimated and true maps, as ``bioface evaluate`` reports it.

    Per map of :data:`training.evaluate.MAP_TRUTH`: the Pearson r inside the
    mask of each face (:func:`training.evaluate.masked_pearson`), averaged
    over faces with ``nanmean`` (faces where a map is constant are left out).

    Args:
        params: the estimated decoder inputs (``fmel``, ``fblood``,
            ``shading``, ``specmask`` `(N, H, W, 1)`).
        truth: the ``gt_*`` maps `(N, H, W, 1)` of the same faces.
        mask: `(N, H, W, 1)` face masks.

    Returns:
        ``{"r_melanin": …, "r_haemoglobin": …, "r_shading": …, "r_specular": …}``.
    """
    import warnings

    from training.evaluate import MAP_TRUTH, masked_pearson

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all faces constant: NaN, as evaluate gives
        return {
            key: float(np.nanmean(masked_pearson(params[name], truth[gt], mask)))
            for key, (name, gt) in MAP_TRUTH.items()
        }


def _agreement_table(columns: dict[str, dict[str, float]]) -> list[list[str]]:
    """Rows of map agreement (:func:`map_agreement`), a column per model."""
    rows = [["map", *columns]]
    for key, label in MAP_LABELS.items():
        rows.append([label, *(_signed(scores.get(key, float("nan"))) for scores in columns.values())])
    return rows


def _signed(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:+.2f}"


def shipped_model() -> ShippedModel | None:
    """The shipped default model and its card, or None when none is installed.

    Raises:
        BioFaceError: a shipped model is installed but cannot be loaded.
    """
    from bioface_tf import pretrained
    from bioface_tf.analysis import load_model

    try:
        path = pretrained.model_path()
    except BioFaceError:
        return None
    try:
        card = pretrained.card()
    except BioFaceError as err:
        card = {"note": str(err)}
    return ShippedModel(pretrained.DEFAULT_MODEL, path, load_model(path), card)


def _card_text(card: dict) -> list[str]:
    """The card's fields as report paragraphs, one per field."""
    from bioface_tf.pretrained import CARD_FIELDS

    def text(value):
        if isinstance(value, dict):
            return ", ".join(f"{k} {text(v)}" for k, v in value.items())
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    keys = [k for k in CARD_FIELDS if k in card and k != "training_command"]
    keys += [k for k in card if k not in CARD_FIELDS]
    return [f"{k.replace('_', ' ').capitalize()}: {text(card[k])}." for k in keys]


def run_demo(
    out="demo_out",
    faces: int = DEFAULT_FACES,
    steps: int = DEFAULT_STEPS,
    minutes: float = DEFAULT_MINUTES,
    seed: int = 0,
    progress: bool = True,
    export: bool = True,
) -> DemoResult:
    """Run the whole demo into ``out``.

    Args:
        out: the output folder (created; earlier demo files are replaced).
        faces: rendered training faces.
        steps, minutes: the training budget, whichever ends first.
        seed: seeds rendering and training.
        progress: show progress bars.
        export: try the TFLite export of the editing renderer.
    """
    from tqdm import tqdm

    from bioface_tf import figures
    from bioface_tf.analysis import analyse, analyse_files, decoder_of
    from bioface_tf.data import CelebAFaces
    from bioface_tf.data.synth import contact_sheet, write_synthetic
    from bioface_tf.editing import Edit, edit_faces
    from bioface_tf.palette import render_palette
    from bioface_tf.report import Report

    started = time.perf_counter()
    out = pathlib.Path(out)
    shipped = shipped_model()
    data_dir = out / "data"
    written: dict[str, pathlib.Path] = {}
    done = 0

    def stage(text):
        nonlocal done
        done += 1
        if progress:
            tqdm.write(f"[{done}/{STAGES}] {text} ({(time.perf_counter() - started) / 60:.1f} min)")

    train_path = write_synthetic(data_dir / "train_faces.h5", n=faces, size=IMAGE_SIZE, seed=seed, progress=progress)
    test_path = write_synthetic(data_dir / "held_out_faces.h5", n=HELD_OUT, size=IMAGE_SIZE, seed=seed + 1,
                                progress=False)
    with CelebAFaces([train_path], image_size=None) as source:
        sample = source.read(np.arange(min(16, len(source))))["image"]
    written["training faces"] = figures.write_png(out / "training_faces.png", contact_sheet(sample, columns=8))
    stage(f"rendered {faces} + {HELD_OUT} faces")

    preset = demo_preset(steps, seed)
    model, log = train_briefly(train_path, preset, minutes * 60.0, progress=progress)
    written["model"] = out / "model.keras"
    model.save(written["model"])
    written["loss curve"] = figures.write_png(out / "loss.png", figures.line_plot(log.step_numbers, log.losses,
                                                                                   "training loss", "step"))
    stage(f"trained {log.steps} steps")

    analysis_dir = out / "analysis"
    run = analyse_files(model, [test_path], analysis_dir, figure_rows=HELD_OUT, progress=False)
    written["figure grid"] = run.figure
    written["analysis"] = analysis_dir
    stage(f"analysed {len(run.names)} faces")

    with CelebAFaces([test_path], image_size=None) as source:
        held_out = source.read(np.arange(len(source)), ground_truth=True)
    analysed = analyse(model, held_out["image"], held_out["mask"])
    agreement = {f"this run ({log.steps} steps)": map_agreement(analysed.params, held_out, analysed.mask)}
    if shipped is not None:
        scores, shipped_figure, shipped_note = _compare_shipped(shipped, held_out, run.names, out)
        if scores is not None:
            agreement[f"shipped {shipped.name}"] = scores
            written[f"shipped {shipped.name} figure grid"] = shipped_figure
    shown = analysed.head(EDIT_ROWS)
    names = run.names[: len(shown)]
    decoder = decoder_of(model)
    for key, label, edit in (
        ("fmel", "melanin", Edit(melanin=MELANIN_EDIT)),
        ("fblood", "haemoglobin", Edit(haemoglobin=HAEMOGLOBIN_EDIT)),
    ):
        edited = edit_faces(shown, edit, decoder)
        delta = edit.melanin if key == "fmel" else edit.haemoglobin
        written[f"{label} edit"] = figures.write_png(
            out / f"edit_{label}.png", figures.edit_figure(shown, edited, key, delta, names)
        )
    stage("edited melanin and haemoglobin")

    palette = np.concatenate([render_palette(n=8, illuminant=name, patch=16) for name in ("D65", "A", "F11")], axis=1)
    written["skin palettes"] = figures.write_png(out / "skin_palettes.png", palette)
    tflite, tflite_note = _export_tflite(model, out) if export else ([], "Not exported (--no-export).")
    for path in tflite:
        written[f"TFLite {path.name}"] = path
    stage("palettes and export")

    elapsed = time.perf_counter() - started
    report = Report("BioFace-TF demo")
    report.section(
        "What ran",
        f"Rendered {faces} training faces and {HELD_OUT} held-out faces with known melanin, haemoglobin, "
        f"shading, specular, illuminant and camera; trained the mobile BioFaceNet for {log.steps} steps "
        f"(batch {preset.train.batch_size}, {log.seconds / 60:.1f} min of training"
        + (", stopped by the time budget" if log.stopped_by_time else "")
        + f"); analysed and edited the held-out faces. Whole run: {elapsed / 60:.1f} min on "
        f"{_machine()}.",
        code="bioface demo" if (faces, steps, minutes) == (DEFAULT_FACES, DEFAULT_STEPS, DEFAULT_MINUTES)
        else f"bioface demo --faces {faces} --steps {steps} --minutes {minutes:g}",
    )
    report.section("Training data (rendered)", "The first 16 training faces.",
                   figures=[(written["training faces"], "rendered faces")])
    report.section("Training", f"Loss (weighted sum of the terms) every {LOG_EVERY} steps. The same training "
                   "with bioface train (without the demo's time budget):",
                   figures=[(written["loss curve"], "training loss")], links=[(written["model"], "model.keras")],
                   code=equivalent_train_command(preset, str(train_path)))
    report.section(
        "Analysis of held-out faces",
        "Rows: faces; columns: input, reconstruction, melanin, haemoglobin (viridis; colour bars give the "
        "map value in [-1, 1] and the volume fraction), diffuse and specular shading (grey, each face "
        "scaled to its 99th percentile). Each face's folder holds these images, the diffuse albedo, "
        "params.json (illuminant and camera) and maps.npz.",
        f"Agreement with the true maps (table): Pearson r per face inside the mask, averaged over "
        f"{len(analysed)} faces, as bioface evaluate reports it (pixels are not pooled over faces).",
        figures=[(run.figure, "figure grid")],
        table=_agreement_table(agreement),
        links=[(analysis_dir / n, n) for n in run.names],
    )
    if shipped is not None:
        _shipped_section(report, shipped, written.get(f"shipped {shipped.name} figure grid"), shipped_note)
    report.section("Illuminant and camera: estimate / truth", table=_ground_truth_table(
        test_path, [str(analysis_dir / n) for n in run.names]))
    report.section(
        "Editing",
        f"Edits act on the scaled maps (melanin {MELANIN_EDIT:+g}, haemoglobin {HAEMOGLOBIN_EDIT:+g}, clipped "
        "to [-1, 1]) and re-render with everything else fixed; the residual (input - reconstruction) is "
        "kept, and outside the face mask the input is unchanged.",
        figures=[(written["melanin edit"], f"melanin {MELANIN_EDIT:+g}"),
                 (written["haemoglobin edit"], f"haemoglobin {HAEMOGLOBIN_EDIT:+g}")],
    )
    report.section(
        "What the physics can express",
        "Skin patches rendered by the decoder under D65, A and F11: melanin increases left to right, "
        "haemoglobin top to bottom.",
        figures=[(written["skin palettes"], "skin palettes")],
    )
    report.section("On-device editor (TFLite)", tflite_note, links=[(p, p.name) for p in tflite])
    report.section("A full run on CelebA", FULL_RUN_NOTE, code=FULL_RUN)
    written["report"] = report.write(out / "report.html")
    stage("report written")
    return DemoResult(written, elapsed, log)


def _compare_shipped(
    shipped: ShippedModel, held_out: dict, names: list[str], out: pathlib.Path
) -> tuple[dict[str, float] | None, pathlib.Path | None, str]:
    """Analyse the held-out faces with the shipped model.

    Returns:
        ``(its map agreement, its figure grid, "")``, or ``(None, None, why
        not)`` when it works at another size than the held-out faces.
    """
    from bioface_tf import figures
    from bioface_tf.analysis import analyse

    size = shipped.model.image_size
    if size != IMAGE_SIZE:
        return None, None, (f"Not compared: it analyses {size}x{size} faces, the held-out faces are "
                            f"{IMAGE_SIZE}x{IMAGE_SIZE}.")
    faces = analyse(shipped.model, held_out["image"], held_out["mask"])
    figure = figures.write_png(out / "shipped_model_figure.png", figures.analysis_grid(faces, names))
    return map_agreement(faces.params, held_out, faces.mask), figure, ""


def _shipped_section(report, shipped: ShippedModel, figure: pathlib.Path | None, note: str) -> None:
    """The report's section on the shipped model: what it is (its card) and its figure grid."""
    report.section(
        f"The shipped model ({shipped.name})",
        f"The model that ships with the package ({shipped.path}); bioface analyze, edit, evaluate and export "
        "use it when --model is omitted. Analysed on the same held-out faces: its map agreement is the "
        "last column of the table above.",
        *([note] if note else []),
        *_card_text(shipped.card),
        figures=[(figure, f"{shipped.name}: figure grid")] if figure else [],
        code=shipped.card.get("training_command"),
    )


def _machine() -> str:
    import os

    return f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.processor() or 'CPU'})"
