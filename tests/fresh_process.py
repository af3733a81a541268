"""Run a console command in a fresh Python process, as a user's shell would, and spot native log lines."""

import os
import pathlib
import re
import subprocess
import sys

LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl|cuInit|cuda|oneDNN|XNNPACK|cpu_feature_guard|TensorFlow binary", re.I)
"""Any line TensorFlow, absl, CUDA or LiteRT would write from C++ (checked independently of native_logs)."""


def command(name: str) -> list[str]:
    """The installed console script ``name`` (``bioface``, ``bioface-lite``), or its module run by this Python."""
    script = pathlib.Path(sys.executable).parent / name
    if script.is_file():
        return [str(script)]
    module = {"bioface": "bioface_tf.cli", "bioface-lite": "mobile_export.cli"}[name]
    return [sys.executable, "-m", module]


def run(args: list[str]) -> subprocess.CompletedProcess:
    """``args`` in a new process without the caller's TF_CPP_*/ABSL_* settings; text output captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "ABSL"))}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)


def native_log_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that native libraries wrote."""
    return [line for line in stderr.splitlines() if LOG_LINE.search(line)]
