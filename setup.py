"""Install BioFace-TF.

The spectral tables live in ``data/spectra`` at the top of the repository (the
layout the project asks for). ``build_py`` below copies them into the package as
``bioface_tf/spectra_data`` so that a non-editable install stands alone too; an
editable install (``pip install -e .``) reads them from ``data/spectra``.

The shipped models in ``bioface_tf/pretrained/<name>/`` (``model.keras``,
``card.json``, ``lite/*``) are package data, so ``pip install .`` carries them;
``MANIFEST.in`` puts them (and ``data/spectra``) into a source distribution.
"""

import pathlib
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).parent

LITE_REQUIRES = [
    "ai-edge-litert==2.3.0",
    "numpy==2.2.6",
    "opencv-python-headless==4.12.0.88",
    "tqdm==4.70.1",
]
"""What the on-device runtime (``bioface-lite``) needs: no TensorFlow."""

INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "h5py==3.14.0",
    *LITE_REQUIRES,
]

EXTRAS_REQUIRE = {
    "dev": [
        "pytest==9.2.0",
        "hypothesis==6.170.17",
    ],
    "benchmarks": [
        "scikit-image==0.26.0",
        "matplotlib==3.11.2",
        "mahotas==1.4.19",
    ],
    # benchmarks/bench_training.py's PyTorch comparison only; kept out of
    # "benchmarks" and "dev" (a multi-GB download). On Linux pip takes the
    # CUDA build from PyPI; for the CPU-only one add
    # --extra-index-url https://download.pytorch.org/whl/cpu
    "torch-comparison": [
        "torch==2.13.0",
    ],
}


PRETRAINED_FILES = ["*/model.keras", "*/card.json", "*/lite/*"]
"""The shipped models (``bioface_tf/pretrained/<name>/``), installed as package data."""
LANDMARK_FILES = ["face_landmark/face_landmark.tflite", "face_landmark/LICENSE", "face_landmark/README.md"]
"""MediaPipe's face landmark model (Apache-2.0) and its licence, for ``--mask landmarks``; installed as package data."""


class BuildPyWithSpectra(build_py):
    """Copy ``data/spectra/*`` into the built package."""

    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "bioface_tf" / "spectra_data"
        target.mkdir(parents=True, exist_ok=True)
        for source in (ROOT / "data" / "spectra").iterdir():
            if source.suffix in (".csv", ".md"):
                shutil.copy2(source, target / source.name)


setup(
    name="bioface-tf",
    version="0.1.0",
    description=(
        "BioFaceNet in TensorFlow/Keras: biophysical face maps, "
        "spectral physics decoder, editing and TFLite export"
    ),
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["bioface_tf", "bioface_tf.*", "training", "training.*", "mobile_export", "mobile_export.*"]),
    package_data={
        "training": ["presets/*.json"], "bioface_tf.pretrained": PRETRAINED_FILES, "bioface_tf": LANDMARK_FILES,
    },
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    cmdclass={"build_py": BuildPyWithSpectra},
    entry_points={"console_scripts": ["bioface=bioface_tf.cli:main", "bioface-lite=mobile_export.cli:main"]},
)
