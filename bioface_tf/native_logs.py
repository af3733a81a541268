"""The log lines TensorFlow and LiteRT write from C++ straight to stderr, hidden.

On a machine without a GPU, ``import tensorflow`` and its first look for
devices write lines such as::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796204532.283904    3336 port.cc:153] oneDNN custom operations are on. …
    E0000 00:00:1796204536.603992    3336 cuda_platform.cc:52] failed call to cuInit: … (303)

and a LiteRT interpreter, when it first allocates its tensors, writes
``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` They come from
C++ (absl logging before it is initialised, TFLite's minimal logger), so
``TF_CPP_MIN_LOG_LEVEL`` does not hide them all. After :func:`quiet` (which
the ``bioface`` and ``bioface-lite`` commands call unless ``--verbose`` is
given), the steps that write them run inside :func:`filtered`: file
descriptor 2 points at a temporary file meanwhile, and afterwards every line
that is not such a log line (:func:`is_native_log_line`) — a Python warning,
an error message, a traceback — is written to stderr after all.

Nothing here imports TensorFlow, so the LiteRT runtime can use it.

Example:

>>> quiet()                        # before TensorFlow is imported    # doctest: +SKIP
>>> import keras                   # prints no start-up lines          # doctest: +SKIP
>>> with filtered():               # a native call of your own         # doctest: +SKIP
...     interpreter.allocate_tensors()
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import re
import sys
import tempfile

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LOG_LEVEL = "3"
"""TensorFlow's C++ log level once absl logging is set up: info, warnings and errors hidden. Level 2 let
through ``E… util.cc:131] oneDNN supports DT_INT32 only on platforms with AVX-512. Falling back …`` at the
first training step, an "error" about a harmless fallback; a real failure still reaches the user as a
Python exception, and ``--verbose`` shows every line."""

NATIVE_LOG_LINES = (
    re.compile(r"[IWEF]\d{4} [\d:.]+ +\d+ [\w.+-]+:\d+\] "),
    re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags"),
    re.compile(r"INFO: (Created TensorFlow Lite .*delegate for CPU|Initialized TensorFlow Lite runtime)\."),
)
"""The lines :func:`filtered` drops: absl/glog-formatted lines (``I0000 00:00:… file.cc:52] …``)
and the known start-up lines of TensorFlow and LiteRT."""

_quiet = False


def is_native_log_line(line: str) -> bool:
    """Whether ``line`` is a C++ log line of TensorFlow or LiteRT (:data:`NATIVE_LOG_LINES`)."""
    return any(pattern.match(line) for pattern in NATIVE_LOG_LINES)


def is_quiet() -> bool:
    """Whether :func:`quiet` was called in this process."""
    return _quiet


def quiet() -> None:
    """Hide TensorFlow's and LiteRT's C++ log lines for the rest of the process.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless the environment already sets it,
    makes :func:`filtered` filter, and, if TensorFlow is not imported yet,
    arranges for its first import (directly or through Keras) to run inside
    :func:`filtered` together with its search for devices (where the
    ``cuInit`` error is written). Call it before TensorFlow is imported;
    calling it again does nothing more.
    """
    global _quiet
    _quiet = True
    os.environ.setdefault(LOG_LEVEL_VARIABLE, QUIET_LOG_LEVEL)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


@contextlib.contextmanager
def filtered():
    """Run a block with C++ log lines written to stderr dropped (after :func:`quiet`).

    Before :func:`quiet` is called, or where stderr has no file descriptor,
    the block runs unchanged. Otherwise descriptor 2 is redirected to a
    temporary file for the block, and on leaving it (also by an exception)
    the lines that :func:`is_native_log_line` does not match are written to
    ``sys.stderr``.
    """
    if not _quiet:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if not is_native_log_line(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietTensorFlowLoader(importlib.abc.Loader):
    """Wraps TensorFlow's loader: runs the package's import and device search inside :func:`filtered`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__spec__.loader = module.__loader__ = self.loader
        with filtered():
            self.loader.exec_module(module)
            module.config.list_physical_devices()


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and hands it :class:`_QuietTensorFlowLoader`; once."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietTensorFlowLoader(spec.loader)
                return spec
        return None
