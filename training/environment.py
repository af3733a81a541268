"""TensorFlow settings read once, when TensorFlow is first imported.

oneDNN (``TF_ENABLE_ONEDNN_OPTS``) is off by default in TensorFlow on AMD
CPUs; turned on it speeds up training of this network on a 2-core EPYC by
about 1.5× (6.4 against 4.3 images/s as measured for issue 4;
re-measure with ``benchmarks/bench_training.py``). The variable is
only read when TensorFlow loads, so ``bioface train`` and ``bioface
evaluate`` call :func:`configure` before they import anything that imports
TensorFlow. In your own scripts, set it in the shell
(``TF_ENABLE_ONEDNN_OPTS=1 python train.py``) or before ``import tensorflow``.

The precision training runs in is chosen from the hardware by
:func:`choose_precision`, a pure function of what the machine reports, so
that it can be tested anywhere:

>>> choose_precision("auto", has_gpu=False, flags={"avx512f", "avx512_bf16"}).policy
'mixed_bfloat16'
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings

from bioface_tf.errors import BioFaceError

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
PRECISION_SETTINGS = ("auto", "on", "off", "float16", "bfloat16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = "/proc/cpuinfo"


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


@dataclasses.dataclass(frozen=True)
class Precision:
    """A Keras dtype policy and why it was chosen."""

    policy: str
    reason: str


def cpu_flags(cpuinfo: str = CPUINFO) -> frozenset[str]:
    """The instruction-set flags the CPU reports (Linux ``/proc/cpuinfo``); empty elsewhere."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def choose_precision(setting: str, has_gpu: bool, flags: frozenset[str] | set[str]) -> Precision:
    """The dtype policy for ``train.mixed_precision``; the physics and losses stay float32 in all.

    - ``"auto"``: ``mixed_float16`` on a GPU; ``mixed_bfloat16`` on a CPU
      with native bfloat16 arithmetic (flag ``avx512_bf16`` or
      ``amx_bf16``); ``float32`` otherwise (emulated half precision slows
      a CPU down);
    - ``"on"``: the device's half precision: float16 on a GPU, bfloat16 on
      a CPU (even without native support);
    - ``"float16"`` / ``"bfloat16"``: that one, whatever the hardware;
    - ``"off"``: ``float32``.

    Args:
        setting: one of :data:`PRECISION_SETTINGS`.
        has_gpu: whether TensorFlow sees a GPU.
        flags: the CPU's flags (:func:`cpu_flags`).

    Raises:
        BioFaceError: ``setting`` is not one of :data:`PRECISION_SETTINGS`.
    """
    if setting not in PRECISION_SETTINGS:
        raise BioFaceError(f"train.mixed_precision must be one of {PRECISION_SETTINGS}, got {setting!r}")
    told = f"train.mixed_precision={setting}"
    if setting == "off":
        return Precision("float32", told)
    if setting in ("float16", "bfloat16"):
        return Precision(f"mixed_{setting}", told)
    if has_gpu:
        return Precision("mixed_float16", f"{told} and a GPU is present")
    native = sorted(set(NATIVE_BF16_FLAGS) & set(flags))
    lacking = " and ".join(NATIVE_BF16_FLAGS)
    if native:
        return Precision("mixed_bfloat16", f"{told}, no GPU, and the CPU has native bfloat16 ({', '.join(native)})")
    if setting == "on":
        return Precision("mixed_bfloat16", f"{told}, no GPU; the CPU lacks {lacking}, so bfloat16 is emulated (slow)")
    return Precision("float32", f"{told}, no GPU, and the CPU lacks {lacking} (no native half precision)")
