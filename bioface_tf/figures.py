"""Figures of an analysis and of edits (NumPy + OpenCV, uint8 RGB images).

* :func:`analysis_grid` — the layout of the BioFaceNet paper: one row per
  face; columns input, reconstruction, melanin, haemoglobin, diffuse
  shading, specular shading; colour bars under the two maps;
* :func:`edit_figure` — input, a map, the map after the edit, the edited
  output, one row per face;
* :func:`face_panels` — one face's images for its output folder.

Melanin and haemoglobin maps use the viridis colour map over the decoder's
[−1, 1] range, and their colour bars give the physical units next to it:
the chromophore's volume fraction (melanin in the epidermis, haemoglobin in
the dermis, :func:`bioface_tf.spectra.map_to_volume_fraction`).
Shading maps are grey, scaled per face so that the 99th percentile inside
the mask is white. Outside the face mask every model output is shown as a
flat grey.

Example:

>>> write_png("grid.png", analysis_grid(faces, names))   # doctest: +SKIP
"""

from __future__ import annotations

import pathlib

import cv2
import numpy as np

from bioface_tf import spectra

TILE = 128
GAP = 4
BACKGROUND = 255
OUTSIDE_MASK = 64
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_SCALE = 0.42
HEADER = 22
BAR_HEIGHT = 12
BAR_TICKS = (-1.0, 0.0, 1.0)
GRID_COLUMNS = ("input", "reconstruction", "melanin", "haemoglobin", "diffuse", "specular")
CHROMOPHORES = {
    "fmel": ("melanin", spectra.MELANIN_MAX),
    "fblood": ("haemoglobin", spectra.HAEMOGLOBIN_MAX),
}


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] → uint8."""
    return (np.clip(rgb, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def write_png(path: str | pathlib.Path, rgb: np.ndarray) -> pathlib.Path:
    """Write a uint8 (or [0, 1] float) RGB image as PNG; returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = rgb if rgb.dtype == np.uint8 else to_uint8(rgb)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def viridis(values: np.ndarray, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """`(H, W)` values → `(H, W, 3)` uint8 RGB through the viridis colour map."""
    levels = np.clip((np.asarray(values, np.float32) - low) / (high - low), 0.0, 1.0)
    bgr = cv2.applyColorMap(to_uint8(levels), cv2.COLORMAP_VIRIDIS)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _zoom(image: np.ndarray, tile: int) -> np.ndarray:
    return cv2.resize(image, (tile, tile), interpolation=cv2.INTER_NEAREST)


def _masked(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    inside = np.asarray(mask).reshape(mask.shape[:2])[..., None] > 0.5
    return np.where(inside, rgb, np.uint8(OUTSIDE_MASK)).astype(np.uint8)


def map_tile(values: np.ndarray, mask: np.ndarray, tile: int = TILE) -> np.ndarray:
    """A scaled map `(H, W, 1)` in [−1, 1] as a viridis tile inside the mask."""
    return _zoom(_masked(viridis(values[..., 0]), mask), tile)


def grey_tile(values: np.ndarray, mask: np.ndarray, tile: int = TILE) -> np.ndarray:
    """A shading map `(H, W, 1)` ≥ 0 in grey, the mask's 99th percentile white."""
    values = np.asarray(values[..., 0], np.float32)
    inside = mask[..., 0] > 0.5
    top = np.percentile(values[inside], 99) if inside.any() else values.max()
    grey = to_uint8(values / top if top > 0 else np.zeros_like(values))
    return _zoom(_masked(np.repeat(grey[..., None], 3, axis=-1), mask), tile)


def rgb_tile(rgb: np.ndarray, mask: np.ndarray | None = None, tile: int = TILE) -> np.ndarray:
    """An sRGB image `(H, W, 3)` in [0, 1] as a tile, grey outside ``mask`` if given."""
    image = to_uint8(rgb)
    return _zoom(image if mask is None else _masked(image, mask), tile)


def text_strip(text: str, width: int, height: int = HEADER, scale: float = TEXT_SCALE) -> np.ndarray:
    """White strip with centred black text (ASCII)."""
    strip = np.full((height, width, 3), BACKGROUND, np.uint8)
    (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    origin = (max(0, (width - w) // 2), (height + h) // 2)
    cv2.putText(strip, text, origin, FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def colour_bar(key: str, width: int = TILE) -> np.ndarray:
    """A horizontal viridis bar for ``fmel`` or ``fblood`` with two scales.

    Ticks at −1, 0 and 1: the scaled map value above the bar, the
    chromophore's volume fraction (in %) below it.
    """
    maximum = CHROMOPHORES[key][1]
    ramp = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None].repeat(BAR_HEIGHT, axis=0)
    bar = viridis(ramp)
    rows = [text_strip("map value", width, 16, 0.35)]
    above = np.full((16, width, 3), BACKGROUND, np.uint8)
    below = np.full((16, width, 3), BACKGROUND, np.uint8)
    for value in BAR_TICKS:
        x = int(round((value + 1.0) / 2.0 * (width - 1)))
        percent = 100.0 * float(spectra.map_to_volume_fraction(value, maximum))
        for strip, text in ((above, f"{value:+g}" if value else "0"), (below, f"{percent:.1f}%")):
            (w, h), _ = cv2.getTextSize(text, FONT, 0.35, 1)
            left = int(np.clip(x - w // 2, 0, width - w))
            cv2.putText(strip, text, (left, 12), FONT, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        bar[:, max(0, x - 1) : x + 1] = 0
    rows += [above, bar, below, text_strip("volume fraction", width, 16, 0.35)]
    return np.concatenate(rows, axis=0)


def _assemble(rows: list[list[np.ndarray]], header: list[str], labels: list[str] | None = None) -> np.ndarray:
    """Tiles in rows, a header above the columns, optional row labels on the left."""
    widths = [tile.shape[1] for tile in rows[0]]
    label_width = 0
    if labels:
        label_width = max(cv2.getTextSize(t, FONT, TEXT_SCALE, 1)[0][0] for t in labels) + 2 * GAP

    def line(cells: list[np.ndarray], label: str | None) -> np.ndarray:
        height = cells[0].shape[0]
        parts = []
        if labels:
            parts.append(_label_cell(label or "", label_width, height))
        for cell in cells:
            parts += [np.full((height, GAP, 3), BACKGROUND, np.uint8), cell]
        parts.append(np.full((height, GAP, 3), BACKGROUND, np.uint8))
        return np.concatenate(parts, axis=1)

    lines = [line([text_strip(t, w) for t, w in zip(header, widths)], "")]
    for i, cells in enumerate(rows):
        lines.append(line(cells, labels[i] if labels else None))
        lines.append(np.full((GAP, lines[-1].shape[1], 3), BACKGROUND, np.uint8))
    return np.concatenate(lines, axis=0)


def _label_cell(text: str, width: int, height: int) -> np.ndarray:
    cell = np.full((height, width, 3), BACKGROUND, np.uint8)
    (_, h), _ = cv2.getTextSize(text, FONT, TEXT_SCALE, 1)
    cv2.putText(cell, text, (GAP, (height + h) // 2), FONT, TEXT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    return cell


def _bars_row(columns: list[str | None], width: int = TILE) -> list[np.ndarray]:
    """A row of colour bars (or blanks) under map columns; ``columns`` holds keys."""
    bars = [colour_bar(key, width) if key else None for key in columns]
    height = max(b.shape[0] for b in bars if b is not None)
    blank = np.full((height, width, 3), BACKGROUND, np.uint8)
    return [blank if b is None else np.pad(b, ((0, height - b.shape[0]), (0, 0), (0, 0)), constant_values=BACKGROUND)
            for b in bars]


def figure_grid(
    image: np.ndarray,
    reconstruction: np.ndarray,
    fmel: np.ndarray,
    fblood: np.ndarray,
    shading: np.ndarray,
    specmask: np.ndarray,
    mask: np.ndarray,
    names: list[str] | None = None,
    title: str | None = None,
    tile: int = TILE,
) -> np.ndarray:
    """The figure grid: a row per face, the columns of :data:`GRID_COLUMNS`.

    Args:
        image, reconstruction: `(N, H, W, 3)` sRGB in [0, 1].
        fmel, fblood: `(N, H, W, 1)` scaled maps in [−1, 1].
        shading, specmask: `(N, H, W, 1)` ≥ 0.
        mask: `(N, H, W, 1)` face masks.
        names: row labels (e.g. file names), or None.
        title: a line above the figure (e.g. the epoch and loss), or None.

    Returns:
        uint8 RGB image.
    """
    rows = []
    for i in range(len(image)):
        m = mask[i]
        rows.append([
            rgb_tile(image[i], tile=tile),
            rgb_tile(reconstruction[i], m, tile),
            map_tile(fmel[i], m, tile),
            map_tile(fblood[i], m, tile),
            grey_tile(shading[i], m, tile),
            grey_tile(specmask[i], m, tile),
        ])
    rows.append(_bars_row([None, None, "fmel", "fblood", None, None], tile))
    labels = None if names is None else [*names, ""]
    grid = _assemble(rows, list(GRID_COLUMNS), labels)
    if title:
        grid = np.concatenate([text_strip(title, grid.shape[1]), grid], axis=0)
    return grid


def analysis_grid(faces, names: list[str] | None = None, title: str | None = None, tile: int = TILE) -> np.ndarray:
    """:func:`figure_grid` of a :class:`bioface_tf.analysis.FaceAnalysis`."""
    p = faces.params
    return figure_grid(faces.image, faces.reconstruction, p["fmel"], p["fblood"], p["shading"], p["specmask"],
                       faces.mask, names, title, tile)


def edit_figure(faces, edited: np.ndarray, key: str, delta: float, names: list[str] | None = None,
                tile: int = TILE) -> np.ndarray:
    """Input, map, map + Δ (clipped to [−1, 1]), edited output; a row per face.

    Args:
        faces: a :class:`bioface_tf.analysis.FaceAnalysis`.
        edited: `(B, H, W, 3)` the edited faces in [0, 1].
        key: ``"fmel"`` or ``"fblood"``, the edited map.
        delta: the offset added to it.
    """
    name = CHROMOPHORES[key][0]
    rows = []
    for i in range(len(faces)):
        mask = faces.mask[i]
        values = faces.params[key][i]
        rows.append([
            rgb_tile(faces.image[i], tile=tile),
            map_tile(values, mask, tile),
            map_tile(np.clip(values + delta, -1.0, 1.0), mask, tile),
            rgb_tile(edited[i], tile=tile),
        ])
    rows.append(_bars_row([None, key, key, None], tile))
    header = ["input", f"{name} map", f"{name} {delta:+g}", "edited"]
    labels = None if names is None else [*names, ""]
    return _assemble(rows, header, labels)


def face_panels(faces, i: int, tile: int = 2 * TILE) -> dict[str, np.ndarray]:
    """One face's images, by file stem: input, reconstruction, the two maps
    with colour bars, diffuse and specular shading, diffuse albedo."""
    mask = faces.mask[i]

    def with_bar(key):
        tile_image = map_tile(faces.params[key][i], mask, tile)
        return np.concatenate([tile_image, colour_bar(key, tile)], axis=0)

    return {
        "input": rgb_tile(faces.image[i], tile=tile),
        "reconstruction": rgb_tile(faces.reconstruction[i], mask, tile),
        "melanin": with_bar("fmel"),
        "haemoglobin": with_bar("fblood"),
        "diffuse_shading": grey_tile(faces.params["shading"][i], mask, tile),
        "specular_shading": grey_tile(faces.params["specmask"][i], mask, tile),
        "diffuse_albedo": rgb_tile(faces.albedo[i], mask, tile),
    }


def line_plot(x, y, title: str, x_label: str, width: int = 480, height: int = 240) -> np.ndarray:
    """A simple line plot (log-scaled y when the values span over a decade), uint8 RGB."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    plot = np.full((height, width, 3), BACKGROUND, np.uint8)
    left, right, top, bottom = 56, 12, 26, 30
    cv2.putText(plot, title, (left, 18), FONT, TEXT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(plot, (left, top), (width - right, height - bottom), (0, 0, 0), 1)
    finite = np.isfinite(y)
    if finite.sum() < 2:
        return plot
    x, y = x[finite], y[finite]
    log = y.min() > 0 and y.max() / y.min() > 10
    v = np.log10(y) if log else y
    lo, hi = v.min(), v.max() if v.max() > v.min() else v.min() + 1
    px = left + (x - x.min()) / max(x.max() - x.min(), 1e-12) * (width - left - right)
    py = height - bottom - (v - lo) / (hi - lo) * (height - top - bottom)
    cv2.polylines(plot, [np.stack([px, py], -1).round().astype(np.int32)], False, (31, 119, 180), 1, cv2.LINE_AA)
    for value, yy in ((hi, top + 10), (lo, height - bottom)):
        text = f"{10 ** value if log else value:.3g}"
        cv2.putText(plot, text, (4, yy), FONT, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(plot, f"{x.min():g}", (left, height - 12), FONT, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(plot, f"{x.max():g}", (width - right - 30, height - 12), FONT, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(plot, x_label + (" (log loss axis)" if log else ""), (width // 2 - 40, height - 12), FONT, 0.35,
                (0, 0, 0), 1, cv2.LINE_AA)
    return plot
