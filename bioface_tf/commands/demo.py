"""``bioface demo``: the main job on built-in data.

Until a trained model exists this renders skin-tone palettes through the
physics decoder under three illuminants and writes them to ``demo_out/``.
"""

from __future__ import annotations

import pathlib

DEMO_ILLUMINANTS = ("D65", "A", "F11")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the end-to-end demo on built-in data (writes demo_out/)"
    )
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument("--n", type=int, default=8, help="patches per palette side (default: 8)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import cv2
    import numpy as np
    from tqdm import tqdm

    from bioface_tf.palette import render_palette

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    panels = []
    for name in tqdm(DEMO_ILLUMINANTS, desc="rendering skin palettes", unit="illuminant"):
        palette = render_palette(n=args.n, illuminant=name)
        title = np.ones((28, palette.shape[1], 3), np.float32)
        cv2.putText(title, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.concatenate([title, palette], axis=0))
        panels.append(np.ones((palette.shape[0] + 28, 8, 3), np.float32))
    figure = np.concatenate(panels[:-1], axis=1)
    path = out / "skin_palettes.png"
    cv2.imwrite(str(path), cv2.cvtColor((figure * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    print(f"wrote {path}: melanin increases left to right, haemoglobin top to bottom, "
          f"under {', '.join(DEMO_ILLUMINANTS)}")
    return 0
