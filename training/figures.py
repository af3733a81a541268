"""The training figure: one row per face, one column per quantity (NumPy/OpenCV).

Columns, left to right: input photo, reconstruction (both sRGB), melanin
and haemoglobin (viridis over their full range [-1, 1], each with a colour
bar), diffuse shading and specular shading (grey, each face scaled to its
own 99th percentile inside the mask, as only their shapes are identifiable).
"""

from __future__ import annotations

import cv2
import numpy as np

COLUMNS = ("input", "reconstruction", "melanin", "haemoglobin", "diffuse", "specular")
TILE = 96
HEADER = 22
COLOUR_BAR = 34
FONT = cv2.FONT_HERSHEY_SIMPLEX


def viridis(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map (H, W) values in [low, high] to (H, W, 3) uint8 RGB with viridis."""
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0)
    bgr = cv2.applyColorMap(np.round(255 * scaled).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _grey(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    inside = values[mask > 0.5]
    top = np.percentile(inside, 99) if inside.size else np.max(values)
    scaled = np.clip(values / max(float(top), 1e-12), 0.0, 1.0)
    return np.repeat(np.round(255 * scaled).astype(np.uint8)[..., None], 3, axis=-1)


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.round(255 * np.clip(image, 0.0, 1.0)).astype(np.uint8)


def _tile(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_NEAREST)


def _colour_bar(low: float, high: float) -> np.ndarray:
    bar = np.full((COLOUR_BAR, TILE, 3), 255, np.uint8)
    ramp = viridis(np.tile(np.linspace(low, high, TILE - 8), (10, 1)), low, high)
    bar[2:12, 4 : TILE - 4] = ramp
    for text, x in ((f"{low:g}", 2), (f"{(low + high) / 2:g}", TILE // 2 - 4), (f"{high:g}", TILE - 16)):
        cv2.putText(bar, text, (x, 28), FONT, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def training_figure(photo, reconstruction, fmel, fblood, shading, specmask, mask, title: str = "") -> np.ndarray:
    """Assemble the figure for a few faces.

    Args:
        photo, reconstruction: (N, H, W, 3) sRGB in [0, 1].
        fmel, fblood: (N, H, W, 1) in [-1, 1].
        shading, specmask: (N, H, W, 1) ≥ 0.
        mask: (N, H, W, 1) face mask.
        title: a line above the column names (e.g. the epoch and loss).

    Returns:
        (height, width, 3) uint8 RGB image.
    """
    rows = []
    for i in range(len(photo)):
        m = mask[i, ..., 0]
        tiles = [
            _rgb(photo[i]),
            _rgb(reconstruction[i]),
            viridis(fmel[i, ..., 0], -1.0, 1.0),
            viridis(fblood[i, ..., 0], -1.0, 1.0),
            _grey(shading[i, ..., 0], m),
            _grey(specmask[i, ..., 0], m),
        ]
        rows.append(np.concatenate([_tile(t) for t in tiles], axis=1))
    width = TILE * len(COLUMNS)
    header = np.full((HEADER * (2 if title else 1), width, 3), 255, np.uint8)
    if title:
        cv2.putText(header, title, (4, 15), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for j, name in enumerate(COLUMNS):
        cv2.putText(header, name, (j * TILE + 4, header.shape[0] - 7), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    bars = np.full((COLOUR_BAR, width, 3), 255, np.uint8)
    for j in (COLUMNS.index("melanin"), COLUMNS.index("haemoglobin")):
        bars[:, j * TILE : (j + 1) * TILE] = _colour_bar(-1.0, 1.0)
    return np.concatenate([header, *rows, bars], axis=0)


def write_png(path, figure: np.ndarray) -> None:
    """Write an RGB uint8 figure as PNG."""
    cv2.imwrite(str(path), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
