"""Test configuration shared by the whole suite."""

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("bioface", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("bioface")

TEST_DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def reference_values():
    """Golden numbers of the reference physics (a copy of the design contract's)."""
    return json.loads((TEST_DATA / "reference_values.json").read_text())


def decoder_inputs(
    fmel, fblood, shading, specmask, b=(0.0, 0.0), light_weights=None, cct=5.0
):
    """Build a PhysicsDecoder input dict from per-pixel (H, W) or scalar values."""
    maps = {"fmel": fmel, "fblood": fblood, "shading": shading, "specmask": specmask}
    shape = np.broadcast_shapes(*(np.shape(v) for v in maps.values()), (1, 1))
    batch = {k: np.broadcast_to(np.asarray(v, np.float32), shape)[None, ..., None] for k, v in maps.items()}
    if light_weights is None:
        light_weights = np.eye(14)[1]
    batch["b"] = np.asarray(b, np.float32).reshape(1, 2)
    batch["light_weights"] = np.asarray(light_weights, np.float32).reshape(1, 14)
    batch["cct"] = np.asarray(cct, np.float32).reshape(1, 1)
    return batch
