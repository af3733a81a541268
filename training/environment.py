"""TensorFlow settings read once, when TensorFlow is first imported.

oneDNN (``TF_ENABLE_ONEDNN_OPTS``) is off by default in TensorFlow on AMD
CPUs; turned on it speeds up training of this network on a 2-core EPYC by
about 1.5× (6.4 against 4.3 images/s as measured for issue 4;
re-measure with ``benchmarks/bench_training.py``). The variable is
only read when TensorFlow loads, so ``bioface train`` and ``bioface
evaluate`` call :func:`configure` before they import anything that imports
TensorFlow. In your own scripts, set it in the shell
(``TF_ENABLE_ONEDNN_OPTS=1 python train.py``) or before ``import tensorflow``.
"""

from __future__ import annotations

import os
import sys
import warnings

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def configure(onednn: bool | None = True, quiet: bool = True) -> None:
    """Set TensorFlow's start-up options; call before TensorFlow is imported.

    Args:
        onednn: turn oneDNN kernels on (True) or off (False); ``None`` leaves
            the environment (and TensorFlow's default) alone. A value already
            set in the environment wins, so a user can always override it.
        quiet: hide TensorFlow's C++ start-up messages.
    """
    if quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if onednn is None:
        return
    wanted = "1" if onednn else "0"
    if "tensorflow" in sys.modules and os.environ.get(ONEDNN_VARIABLE) != wanted:
        warnings.warn(
            f"TensorFlow is already imported, so {ONEDNN_VARIABLE}={wanted} has no effect; "
            f"set it in the environment before starting Python",
            stacklevel=2,
        )
    os.environ.setdefault(ONEDNN_VARIABLE, wanted)
