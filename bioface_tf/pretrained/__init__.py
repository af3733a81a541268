"""The shipped models: preset folders inside the package, found by name.

Like a KerasHub preset, a shipped model is a folder
``bioface_tf/pretrained/<name>/`` installed with the package (never
downloaded)::

    model.keras   the trained BioFaceNet; ``bioface analyze``, ``edit``,
                  ``evaluate``, ``export`` and ``analysis.load_model()`` use
                  it when no model is given
    card.json     how it was made: ``training_command``, ``data``, ``size``
                  and ``accuracy`` (CARD_FIELDS)
    lite/         its TFLite bundle as ``bioface export --out lite/`` writes
                  it (``encoder.tflite``, ``renderer.tflite``,
                  ``metadata.json``); ``bioface-lite`` uses it when
                  ``--models`` is omitted

The environment variable ``BIOFACE_PRETRAINED_DIR`` names another folder of
such presets in place of the package's own (tests; a model kept outside the
installation).

This module needs the standard library only, so the TensorFlow-free
runtime (``bioface-lite``) finds its bundle without importing TensorFlow.

Example:

>>> model_path()                        # doctest: +SKIP
PosixPath('.../bioface_tf/pretrained/bioface_mobile/model.keras')
>>> card()["accuracy"]                  # doctest: +SKIP
>>> resolve_model("runs/m/model.keras"), resolve_model("bioface_mobile")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import pathlib
import re

from bioface_tf.errors import BioFaceError

DEFAULT_MODEL = "bioface_mobile"
DIRECTORY_VARIABLE = "BIOFACE_PRETRAINED_DIR"
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
LITE_FOLDER = "lite"
LITE_METADATA = "metadata.json"
CARD_FIELDS = ("training_command", "data", "size", "accuracy")
"""What a card says: the command that trained the model, the data it saw,
its size (parameters, bytes) and its accuracy (``bioface evaluate``'s numbers)."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""A shipped model's name: letters, digits, ``_`` and ``-`` (no folder, no suffix)."""


def root() -> pathlib.Path:
    """The folder holding the presets: ``$BIOFACE_PRETRAINED_DIR`` or this package's."""
    override = os.environ.get(DIRECTORY_VARIABLE)
    return pathlib.Path(override) if override else pathlib.Path(__file__).parent


def available() -> list[str]:
    """Names of the presets under :func:`root` that hold a model, a bundle or a card."""
    folder = root()
    if not folder.is_dir():
        return []
    return sorted(
        p.name for p in folder.iterdir()
        if NAME.fullmatch(p.name) and any((p / f).exists() for f in (MODEL_FILE, CARD_FILE, LITE_FOLDER))
    )


def is_name(text) -> bool:
    """Whether ``text`` reads as a preset's name rather than a path."""
    return isinstance(text, str) and NAME.fullmatch(text) is not None


def model_path(name: str = DEFAULT_MODEL) -> pathlib.Path:
    """The ``.keras`` file of shipped model ``name``.

    Raises:
        BioFaceError: the file is not installed (the message names it).
    """
    return _require(_folder(name) / MODEL_FILE, name, "model")


def lite_bundle_path(name: str = DEFAULT_MODEL) -> pathlib.Path:
    """The TFLite bundle folder of shipped model ``name`` (``bioface export``'s output).

    Raises:
        BioFaceError: the bundle's ``metadata.json`` is not installed.
    """
    folder = _folder(name) / LITE_FOLDER
    _require(folder / LITE_METADATA, name, "TFLite bundle")
    return folder


def card(name: str = DEFAULT_MODEL) -> dict:
    """The model card of shipped model ``name`` (``card.json``; fields :data:`CARD_FIELDS`).

    Raises:
        BioFaceError: the card is not installed, or is not a JSON object.
    """
    path = _require(_folder(name) / CARD_FILE, name, "model card")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BioFaceError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(record, dict):
        raise BioFaceError(f"{path}: a model card must be a JSON object, got {type(record).__name__}")
    return record


def resolve_model(model=None) -> pathlib.Path:
    """The ``.keras`` file that ``model`` means.

    Args:
        model: a path (returned as it is, existing or not), a shipped
            model's name (:func:`model_path`), or None for
            :data:`DEFAULT_MODEL`.
    """
    if model is None:
        return model_path()
    if is_name(model) and not pathlib.Path(model).exists():
        return model_path(model)
    return pathlib.Path(model)


def resolve_lite_bundle(models=None) -> pathlib.Path:
    """The bundle folder that ``models`` means: a folder, a shipped model's name, or None (the default)."""
    if models is None:
        return lite_bundle_path()
    if is_name(models) and not pathlib.Path(models).exists():
        return lite_bundle_path(models)
    return pathlib.Path(models)


def _folder(name: str) -> pathlib.Path:
    if not is_name(name):
        raise BioFaceError(f"{name!r}: not a shipped model's name (letters, digits, '_' and '-')")
    return root() / name


def _require(path: pathlib.Path, name: str, what: str) -> pathlib.Path:
    """``path`` if it is installed; else an error naming it and saying what to do."""
    if path.exists():
        return path
    shipped = ", ".join(available()) or "none"
    raise BioFaceError(
        f"{path}: not found, so the shipped {what} '{name}' is not installed (shipped models here: {shipped}). "
        f"Give a model explicitly (bioface: --model M.keras; bioface-lite: --models DIR), or set "
        f"{DIRECTORY_VARIABLE} to a folder holding {path.relative_to(root()).as_posix()}."
    )
