"""Spectral tables and the quantities derived from them (NumPy, float64).

Everything the physics decoder needs is computed here from first principles
out of four CSV tables shipped in ``data/spectra`` (see its PROVENANCE.md):

* CIE illuminants A, F1..F12 and the D-series at 4000..25000 K;
* CIE 1931 2-degree colour matching functions;
* spectral sensitivities of 28 cameras;
* melanin and haemoglobin absorption.

All spectra are sampled at the 33 wavelengths 400, 410, ..., 720 nm
(:data:`WAVELENGTHS_NM`). Nothing here imports TensorFlow; the Keras layers in
:mod:`bioface_tf.physics` turn these arrays into constants.

Example:

>>> from bioface_tf import spectra
>>> spectra.skin_reflectance_table().shape
(256, 256, 33)
>>> spectra.camera_pca().explained_variance_ratio.round(4)
array([0.2793, 0.2678])
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
import pathlib

import numpy as np

from bioface_tf.errors import BioFaceError

WAVELENGTHS_NM = np.arange(400.0, 721.0, 10.0)
N_WAVELENGTHS = 33

N_SKIN_GRID = 256
MELANIN_MAX = 0.43
HAEMOGLOBIN_MAX = 0.07

FLUORESCENT_NAMES = tuple(f"F{i}" for i in range(1, 13))
ILLUMINANT_NAMES = ("A", "D") + FLUORESCENT_NAMES
D_SERIES_KELVIN = np.arange(4000.0, 25001.0, 1000.0)

XYZ_ROW_SUMS = np.array([0.3253, 0.3425, 0.3723])
XYZ_TO_LINEAR_SRGB = np.array(
    [
        [3.2406, -1.5372, -0.4986],
        [-0.9689, 1.8758, 0.0415],
        [0.0557, -0.2040, 1.0570],
    ]
)


class SpectraError(BioFaceError):
    """A spectral table is missing or malformed."""


def spectra_dir() -> pathlib.Path:
    """Folder holding the CSV tables.

    ``$BIOFACE_SPECTRA_DIR`` if set; otherwise ``spectra_data`` inside
    the installed package (non-editable installs); ``data/spectra`` at the top
    of the repository (editable installs and a plain checkout).
    """
    override = os.environ.get("BIOFACE_SPECTRA_DIR")
    here = pathlib.Path(__file__).resolve().parent
    if override:
        candidates = [pathlib.Path(override)]
    else:
        candidates = [here / "spectra_data", here.parent / "data" / "spectra"]
    for folder in candidates:
        if (folder / "cie_illuminants.csv").is_file():
            return folder
    raise SpectraError(
        "spectral tables not found; looked in "
        + ", ".join(str(c) for c in candidates)
        + " (set BIOFACE_SPECTRA_DIR to the folder holding cie_illuminants.csv)"
    )


def _read_csv(name: str) -> tuple[list[str], list[list[str]]]:
    path = spectra_dir() / name
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as err:
        raise SpectraError(f"{path}: cannot read ({err})") from err
    if len(rows) < 2:
        raise SpectraError(f"{path}: no data rows")
    return rows[0], rows[1:]


def _wavelength_table(name: str) -> dict[str, np.ndarray]:
    """A table with one row per wavelength; returns ``{column: (33,)}``."""
    header, rows = _read_csv(name)
    values = np.array(rows, dtype=np.float64)
    path = spectra_dir() / name
    if values.shape[0] != N_WAVELENGTHS or not np.allclose(values[:, 0], WAVELENGTHS_NM):
        raise SpectraError(f"{path}: expected rows at 400, 410, ..., 720 nm")
    if not np.all(np.isfinite(values)):
        raise SpectraError(f"{path}: non-finite values")
    return {column: values[:, i] for i, column in enumerate(header) if i > 0}


@dataclasses.dataclass(frozen=True)
class Illuminants:
    """CIE illuminants, each normalised to sum 1 over the 33 samples.

    Attributes:
        a: (33,) CIE illuminant A (tungsten, 2856 K).
        fluorescent: (12, 33) CIE F1..F12.
        d_series: (22, 33) CIE daylight at 4000, 5000, ..., 25000 K.
        d_basis: (3, 33) the daylight basis S0, S1, S2 (not normalised).
    """

    a: np.ndarray
    fluorescent: np.ndarray
    d_series: np.ndarray
    d_basis: np.ndarray


def _normalise(spectrum: np.ndarray) -> np.ndarray:
    return spectrum / spectrum.sum(axis=-1, keepdims=True)


@functools.lru_cache(maxsize=None)
def illuminants() -> Illuminants:
    table = _wavelength_table("cie_illuminants.csv")
    d_names = [f"D_{int(k)}K" for k in D_SERIES_KELVIN]
    return Illuminants(
        a=_normalise(table["A"]),
        fluorescent=_normalise(np.stack([table[n] for n in FLUORESCENT_NAMES])),
        d_series=_normalise(np.stack([table[n] for n in d_names])),
        d_basis=np.stack([table["D_S0"], table["D_S1"], table["D_S2"]]),
    )


def daylight_from_basis(kelvin: float) -> np.ndarray:
    """CIE daylight at a correlated colour temperature, from S0/S1/S2.

    Args:
        kelvin: correlated colour temperature in K, 4000..25000.

    Returns:
        (33,) spectrum normalised to sum 1.
    """
    t = float(kelvin)
    if t <= 7000.0:
        xd = -4.6070e9 / t**3 + 2.9678e6 / t**2 + 0.09911e3 / t + 0.244063
    else:
        xd = -2.0064e9 / t**3 + 1.9018e6 / t**2 + 0.24748e3 / t + 0.237040
    yd = -3.000 * xd**2 + 2.870 * xd - 0.275
    m = 0.0241 + 0.2562 * xd - 0.7341 * yd
    m1 = (-1.3515 - 1.7703 * xd + 5.9114 * yd) / m
    m2 = (0.0300 - 31.4424 * xd + 30.0717 * yd) / m
    s0, s1, s2 = illuminants().d_basis
    return _normalise(s0 + m1 * s1 + m2 * s2)


@functools.lru_cache(maxsize=None)
def colour_matching_functions() -> np.ndarray:
    """CIE 1931 2-degree observer, (33, 3) columns x̄, ȳ, z̄."""
    table = _wavelength_table("cie1931_xyz_cmf.csv")
    return np.stack([table["x_bar"], table["y_bar"], table["z_bar"]], axis=1)


@dataclasses.dataclass(frozen=True)
class CameraDatabase:
    """Spectral sensitivities of 28 cameras.

    Attributes:
        names: the 28 camera names, in file order.
        sensitivities: (28, 3, 33) R, G, B, each channel normalised to sum 1.
    """

    names: tuple[str, ...]
    sensitivities: np.ndarray


@functools.lru_cache(maxsize=None)
def camera_database() -> CameraDatabase:
    header, rows = _read_csv("camera_sensitivities.csv")
    path = spectra_dir() / "camera_sensitivities.csv"
    if len(header) != 2 + N_WAVELENGTHS or len(rows) % 3:
        raise SpectraError(f"{path}: expected camera,channel + 33 columns, 3 rows per camera")
    names = []
    curves = []
    for start in range(0, len(rows), 3):
        block = rows[start : start + 3]
        if [r[1] for r in block] != ["R", "G", "B"] or len({r[0] for r in block}) != 1:
            raise SpectraError(f"{path}: rows {start + 2}..{start + 4} are not one camera's R, G, B")
        names.append(block[0][0])
        curves.append([[float(v) for v in r[2:]] for r in block])
    return CameraDatabase(names=tuple(names), sensitivities=_normalise(np.array(curves)))


@dataclasses.dataclass(frozen=True)
class CameraPCA:
    """Two-component PCA model of camera spectral sensitivity.

    ``S(b) = max(components.T @ b + mean, 0)`` gives the stacked R, G, B
    sensitivities (99,) for camera parameters ``b`` (2,).

    Attributes:
        mean: (99,) mean sensitivity over the 28 cameras.
        components: (2, 99) principal directions, MATLAB sign convention
            (largest-magnitude entry positive), each scaled by the square root
            of its eigenvalue (sample variance, N-1).
        explained_variance_ratio: (2,) share of the total variance.
        scores: (28, 2) each database camera's ``b``.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray
    scores: np.ndarray


@functools.lru_cache(maxsize=None)
def camera_pca(n_components: int = 2) -> CameraPCA:
    data = camera_database().sensitivities.reshape(-1, 3 * N_WAVELENGTHS)
    mean = data.mean(axis=0)
    centred = data - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    eigenvalues = singular**2 / (data.shape[0] - 1)
    largest = np.argmax(np.abs(vt), axis=1)
    signs = np.sign(vt[np.arange(vt.shape[0]), largest])
    vt = vt * signs[:, None]
    scale = np.sqrt(eigenvalues[:n_components])
    components = vt[:n_components] * scale[:, None]
    scores = centred @ vt[:n_components].T / scale
    return CameraPCA(
        mean=mean,
        components=components,
        explained_variance_ratio=eigenvalues[:n_components] / eigenvalues.sum(),
        scores=scores,
    )


def camera_sensitivity(b: np.ndarray) -> np.ndarray:
    """Camera sensitivities for PCA parameters.

    Args:
        b: (..., 2) camera parameters, nominally in [-3, 3].

    Returns:
        (..., 3, 33) R, G, B sensitivities (clipped at 0).
    """
    pca = camera_pca()
    stacked = np.maximum(np.asarray(b, dtype=np.float64) @ pca.components + pca.mean, 0.0)
    return stacked.reshape(stacked.shape[:-1] + (3, N_WAVELENGTHS))


def camera_pca_fit(sensitivity: np.ndarray, limit: float = 3.0) -> np.ndarray:
    """Least-squares PCA camera parameters of any curves, (..., 3, 33) → (..., 2), clipped to ±``limit``."""
    pca = camera_pca()
    stacked = np.asarray(sensitivity, dtype=np.float64).reshape(-1, 3 * N_WAVELENGTHS)
    b = np.linalg.lstsq(pca.components.T, (stacked - pca.mean).T, rcond=None)[0].T
    return np.clip(b, -limit, limit).reshape(np.shape(sensitivity)[:-2] + (2,))


def raw_to_xyz_matrix(b: np.ndarray) -> np.ndarray:
    """The 3×3 raw→XYZ matrix T(b) with ``XYZ = T @ white_balanced_raw``.

    Least squares fit of the colour matching functions by the camera's
    sensitivities, ``T = (pinv(S3ᵀ) · XYZcmf)ᵀ``, rows rescaled to sum to
    0.3253, 0.3425, 0.3723 (PHYSICS.md §8).

    Args:
        b: (..., 2) camera parameters.

    Returns:
        (..., 3, 3).
    """
    return raw_to_xyz_of(camera_sensitivity(b))


def raw_to_xyz_of(sensitivity: np.ndarray) -> np.ndarray:
    """PHYSICS.md §8 for any camera curves, (..., 3, 33) → (..., 3, 3).

    ``T = (pinv(S3ᵀ)·XYZcmf)ᵀ``, rows rescaled to :data:`XYZ_ROW_SUMS`.
    """
    s3 = np.asarray(sensitivity, dtype=np.float64)
    fit = np.linalg.pinv(np.swapaxes(s3, -1, -2)) @ colour_matching_functions()
    t = np.swapaxes(fit, -1, -2)
    return t * (XYZ_ROW_SUMS[:, None] / t.sum(axis=-1, keepdims=True))


@functools.lru_cache(maxsize=None)
def raw_to_xyz_table(n: int = 128) -> np.ndarray:
    """T(b) tabulated on ``linspace(-3, 3, n)²`` (first axis b₁), (n, n, 9)."""
    grid = np.linspace(-3.0, 3.0, n)
    b = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1)
    return raw_to_xyz_matrix(b).reshape(n, n, 9)


@dataclasses.dataclass(frozen=True)
class Chromophores:
    """Absorption spectra of the skin chromophores, each (33,).

    Attributes:
        eumelanin, pheomelanin: absorption as tabulated.
        oxyhaemoglobin, deoxyhaemoglobin: molar extinction, cm⁻¹/M.
    """

    eumelanin: np.ndarray
    pheomelanin: np.ndarray
    oxyhaemoglobin: np.ndarray
    deoxyhaemoglobin: np.ndarray


@functools.lru_cache(maxsize=None)
def chromophores() -> Chromophores:
    table = _wavelength_table("chromophore_absorption.csv")
    return Chromophores(
        eumelanin=table["eumelanin"],
        pheomelanin=table["pheomelanin"],
        oxyhaemoglobin=table["oxyhaemoglobin_molar_ext"],
        deoxyhaemoglobin=table["deoxyhaemoglobin_molar_ext"],
    )


def skin_grid() -> tuple[np.ndarray, np.ndarray]:
    """Volume fractions on the lookup grid.

    Returns:
        ``(melanin, haemoglobin)``, each (256,): ``0.43·u³`` and ``0.07·u³``
        for ``u = linspace(0.01, 1, 256)``.
    """
    u = np.linspace(0.01, 1.0, N_SKIN_GRID)
    return MELANIN_MAX * u**3, HAEMOGLOBIN_MAX * u**3


def map_to_volume_fraction(value, maximum: float):
    """Scaled map value in [-1, 1] → chromophore volume fraction.

    The lookup grid places ``u = linspace(0.01, 1, 256)`` at ``0.43·u³``
    (melanin) or ``0.07·u³`` (haemoglobin); a map value ``v`` sits at grid
    position ``(v + 1)/2·255``. Works on NumPy arrays and tensors.

    Args:
        value: fmel or fblood, any shape, in [-1, 1].
        maximum: 0.43 for melanin, 0.07 for haemoglobin.
    """
    u = 0.01 + (value + 1.0) / 2.0 * 0.99
    return maximum * u**3


def skin_reflectance(melanin: np.ndarray, haemoglobin: np.ndarray) -> np.ndarray:
    """Two-layer (epidermis + dermis) Kubelka–Munk skin reflectance.

    Args:
        melanin: (...,) epidermal melanin volume fraction.
        haemoglobin: (...,) dermal blood volume fraction (same shape).

    Returns:
        (..., 33) diffuse reflectance, in [0, 1).
    """
    m = np.asarray(melanin, dtype=np.float64)[..., None]
    h = np.asarray(haemoglobin, dtype=np.float64)[..., None]
    lam = WAVELENGTHS_NM
    chrom = chromophores()
    mu_mel = 0.61 * (80.0 * chrom.eumelanin * 0.02) + 0.39 * (12.0 * chrom.pheomelanin * 0.02)
    mu_oxy = 0.75 * 2.303 * chrom.oxyhaemoglobin * 150.0 / 66500.0
    mu_deoxy = 0.25 * 2.303 * chrom.deoxyhaemoglobin * 150.0 / 66500.0
    mu_blood = mu_oxy + mu_deoxy
    mu_base = 0.0244 + 8.53 * np.exp(-(lam - 154.0) / 66.2)

    c = 0.25 * h
    mu_epi = mu_mel * m + c * (0.75 * mu_oxy + 0.25 * mu_deoxy) + mu_base * (1.0 - m - c)
    transmittance = np.exp(-mu_epi)

    mu_der = h * mu_blood + (1.0 - h) * mu_base
    mu_s = 2e5 * lam**-1.5 + 2e12 * lam**-4.0
    thickness = 0.3
    k = np.sqrt(mu_der * (mu_der + 2.0 * mu_s))
    beta = np.sqrt(mu_der / (mu_der + 2.0 * mu_s))
    grow, decay = np.exp(k * thickness), np.exp(-k * thickness)
    r_der = (1.0 - beta**2) * (grow - decay) / ((1.0 + beta) ** 2 * grow - (1.0 - beta) ** 2 * decay)
    return transmittance * r_der * transmittance


@functools.lru_cache(maxsize=None)
def skin_reflectance_table() -> np.ndarray:
    """The 256×256×33 lookup table; first axis haemoglobin, second melanin."""
    melanin, haemoglobin = skin_grid()
    h, m = np.meshgrid(haemoglobin, melanin, indexing="ij")
    return skin_reflectance(m, h)


@functools.lru_cache(maxsize=None)
def skin_reflectance_basis(rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Low-rank spectral representation of the skin table.

    The 65 536 reflectance spectra are smooth, so a few spectral basis
    functions (the table's leading right singular vectors) represent them
    well: ``table ≈ coefficients @ basis``.

    Args:
        rank: number of basis spectra, 1..33.

    Returns:
        ``(coefficients (256, 256, rank), basis (rank, 33))``.
    """
    if not 1 <= rank <= N_WAVELENGTHS:
        raise ValueError(f"rank must be in 1..{N_WAVELENGTHS}, got {rank}")
    table = skin_reflectance_table().reshape(-1, N_WAVELENGTHS)
    u, singular, vt = np.linalg.svd(table, full_matrices=False)
    coefficients = (u[:, :rank] * singular[:rank]).reshape(N_SKIN_GRID, N_SKIN_GRID, rank)
    return coefficients, vt[:rank]


def summary() -> dict:
    """What is loaded, for ``bioface spectra``."""
    table = skin_reflectance_table()
    pca = camera_pca()
    return {
        "spectra_dir": str(spectra_dir()),
        "wavelengths_nm": [float(WAVELENGTHS_NM[0]), float(WAVELENGTHS_NM[-1]), N_WAVELENGTHS],
        "n_cameras": len(camera_database().names),
        "camera_pca_explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio],
        "skin_table_shape": list(table.shape),
        "skin_table_min": float(table.min()),
        "skin_table_max": float(table.max()),
        "illuminants": list(ILLUMINANT_NAMES),
        "d_series_kelvin": [float(D_SERIES_KELVIN[0]), float(D_SERIES_KELVIN[-1])],
    }
