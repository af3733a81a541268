"""Training configurations as typed, versioned data.

A :class:`Preset` has three sections — ``model``, ``loss`` and ``train`` —
each a dataclass. The named presets live in ``training/presets/*.json``
(one file each, with a ``version``):

- ``paper`` — the reference: weights of PHYSICS.md §10, Adam 1e-5, batch 64,
  appearance compared in linear space;
- ``report`` — the known report's improvement: batch 25, Adam 1e-5, specular
  sparsity weight 1e-8 (instead of 1e-5, which pushes specular maps to black);
- ``improved`` — every suggested improvement: appearance in display space
  (gamma), an MS-SSIM term, the specular pseudo ground-truth term, and an
  ASPP bottleneck;
- ``synthetic`` — supervised pretraining on rendered faces streamed during
  training (:mod:`bioface_tf.data.stream`): the ground-truth terms of
  :mod:`bioface_tf.supervision` plus a light appearance term;
- ``hybrid`` — each batch mixes streamed rendered faces (with their ground
  truth) and the user's unlabelled faces (``--data``) at a stated ratio
  (``train.rendered_per_batch``), the paper's terms on all of them.

``train.rendered_per_batch`` says how many faces of each batch are rendered
on the fly (0: all come from ``--data``; ``batch_size``: no files needed);
``train.batch_norm_recalibration`` batches recalibrate the batch norms'
statistics after every epoch, before the checkpoint (0: off);
``train.rendered_pool`` (0: fresh faces for every batch) renders that many
faces once and draws shuffled batches from them, for CPUs where rendering is
slower than training; ``train.rendered_variety`` is the rendered faces'
pigment distribution (``standard`` or ``wide``, :data:`bioface_tf.data.stream.VARIETIES`);
``train.init_from`` starts from a trained ``.keras`` model's weights
(fine-tuning); ``train.learning_rate_decay`` is ``constant`` or ``cosine``
(to 1 % of the rate over the whole run); ``train.weight_average`` (0: off)
is the momentum of an exponential moving average of the weights, which the
epoch-end checks, the checkpoints and the saved model use
(:func:`training.train.optimizer`).

Any field can be overridden by ``section.field=value`` (``value`` in JSON
syntax, or a bare string):

>>> preset = load_preset("report", ["loss.sparsity=1e-6", "train.epochs=3"])
>>> preset.loss.sparsity, preset.train.batch_size
(1e-06, 25)
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import types
import typing

from bioface_tf.errors import BioFaceError

PRESET_DIR = pathlib.Path(__file__).parent / "presets"
FORMAT_VERSION = 1


class PresetError(BioFaceError):
    """A preset file or an override is not valid."""


@dataclasses.dataclass
class ModelConfig:
    """The network (see :func:`bioface_tf.model.build_bioface`)."""

    variant: str = "full"
    image_size: int = 64
    width_multiplier: float | None = None
    bottleneck: str = "plain"
    atrous_rates: list[int] | None = None
    raw2xyz: str = "exact"
    input_features: str = "image"
    head_initializer: str | None = None

    def backbone_options(self) -> dict:
        """Options for :func:`build_bioface` beyond size and variant (None = variant default)."""
        options = {"bottleneck": self.bottleneck, "input_features": self.input_features}
        if self.width_multiplier is not None:
            options["width_multiplier"] = self.width_multiplier
        if self.atrous_rates is not None:
            options["atrous_rates"] = list(self.atrous_rates)
        if self.head_initializer is not None:
            options["head_initializer"] = self.head_initializer
        return options


@dataclasses.dataclass
class LossConfig:
    """Term weights and options (see :class:`bioface_tf.losses.BioFaceLoss`)."""

    appearance: float = 1e-3
    ms_ssim: float = 0.0
    camera_prior: float = 1e-4
    shading: float = 1e-5
    sparsity: float = 1e-5
    specular_target: float = 0.0
    appearance_space: str = "linear"
    ms_ssim_filter_size: int = 7
    ms_ssim_filter_sigma: float = 1.0
    gt_melanin: float = 0.0
    gt_haemoglobin: float = 0.0
    gt_shading: float = 0.0
    gt_specular: float = 0.0
    gt_camera: float = 0.0
    gt_light: float = 0.0
    gt_cct: float = 0.0
    gt_pattern: float = 1.0


@dataclasses.dataclass
class TrainConfig:
    """Optimisation, data and run-time options."""

    batch_size: int = 64
    learning_rate: float = 1e-5
    epochs: int = 10
    steps_per_epoch: int | None = None
    preprocessing: str = "reference"
    flip: bool = True
    seed: int = 0
    jit_compile: bool = False
    mixed_precision: str = "auto"
    distribute: str = "none"
    onednn: bool = True
    figure_samples: int = 4
    rendered_per_batch: int = 0
    learning_rate_decay: str = "constant"
    init_from: str | None = None
    agreement_faces: int = 50
    rendered_pool: int = 0
    batch_norm_recalibration: int = 20
    rendered_variety: str = "standard"
    weight_average: float = 0.0


SECTIONS = {"model": ModelConfig, "loss": LossConfig, "train": TrainConfig}


@dataclasses.dataclass
class Preset:
    """A complete training configuration."""

    name: str
    version: int
    description: str
    model: ModelConfig
    loss: LossConfig
    train: TrainConfig

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def available() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def _coerce(value, hint, where: str):
    """Check (and gently convert) ``value`` against a dataclass field type."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise PresetError(f"{where}: null is not allowed")
    for option in options:
        base = typing.get_origin(option) or option
        if base is bool and isinstance(value, bool):
            return value
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is str and isinstance(value, str):
            return value
        if base is list and isinstance(value, list):
            return [_coerce(v, typing.get_args(option)[0], where) for v in value]
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise PresetError(f"{where}: expected {names}, got {value!r}")


def _section(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise PresetError(f"{where}: expected an object of fields")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise PresetError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(hints)}")
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()})


def preset_from_dict(data: dict, source: str = "preset") -> Preset:
    """Build and validate a :class:`Preset` from parsed JSON."""
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise PresetError(f"{source}: preset format version {version!r} is not supported (expected {FORMAT_VERSION})")
    unknown = sorted(set(data) - {"name", "version", "description", *SECTIONS})
    if unknown:
        raise PresetError(f"{source}: unknown key(s) {', '.join(unknown)}")
    sections = {key: _section(cls, data.get(key, {}), f"{source}: {key}") for key, cls in SECTIONS.items()}
    return Preset(
        name=str(data.get("name", pathlib.Path(source).stem)),
        version=version,
        description=str(data.get("description", "")),
        **sections,
    )


def apply_override(preset: Preset, assignment: str) -> Preset:
    """Return a copy of ``preset`` with ``section.field=value`` applied."""
    key, sep, text = assignment.partition("=")
    section, dot, field = key.strip().partition(".")
    if not sep or not dot or section not in SECTIONS:
        raise PresetError(
            f"override {assignment!r} is not section.field=value with section one of {', '.join(SECTIONS)}"
        )
    hints = typing.get_type_hints(SECTIONS[section])
    if field not in hints:
        raise PresetError(f"override {assignment!r}: {section} has no field {field!r}; known: {', '.join(hints)}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if hints[field] is not str and isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    updated = dataclasses.replace(
        getattr(preset, section), **{field: _coerce(value, hints[field], f"override {key}")}
    )
    return dataclasses.replace(preset, **{section: updated})


def load_preset(name_or_path: str, overrides=()) -> Preset:
    """A shipped preset by name, or a preset JSON file, with overrides applied.

    Raises:
        PresetError: naming the file (or override) and the problem.
    """
    path = pathlib.Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.json"
        if not path.exists():
            raise PresetError(f"no preset named {name_or_path!r}; available: {', '.join(available())}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{path}: preset file not found") from None
    except (OSError, json.JSONDecodeError) as err:
        raise PresetError(f"{path}: not a readable JSON preset ({err})") from None
    preset = preset_from_dict(data, str(path))
    for assignment in overrides:
        preset = apply_override(preset, assignment)
    return preset
