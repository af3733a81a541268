"""Load a benchmark script as a module, for tests of its pure helpers."""

from __future__ import annotations

import contextlib
import importlib.util
import pathlib
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@contextlib.contextmanager
def loaded(script: str, name: str):
    """``benchmarks/<script>`` imported as module ``name`` for the duration of the block.

    The module sits in ``sys.modules`` meanwhile (dataclasses look their
    module up there) and is removed afterwards.
    """
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
