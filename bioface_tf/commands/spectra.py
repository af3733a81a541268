"""``bioface spectra``: what spectral data is loaded."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "spectra",
        help="show the spectral tables loaded and the physics constants derived from them",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def run(args) -> int:
    from bioface_tf import spectra

    info = spectra.summary()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    ratio = info["camera_pca_explained_variance_ratio"]
    print(f"spectral tables:       {info['spectra_dir']}")
    print(f"wavelengths:           {info['wavelengths_nm'][0]:.0f}..{info['wavelengths_nm'][1]:.0f} nm, {info['wavelengths_nm'][2]} samples")
    print(f"illuminants:           {', '.join(info['illuminants'])} (D at {info['d_series_kelvin'][0]:.0f}..{info['d_series_kelvin'][1]:.0f} K)")
    print(f"cameras:               {info['n_cameras']}; PCA explained variance {ratio[0]:.4f}, {ratio[1]:.4f}")
    print(f"skin reflectance table: {tuple(info['skin_table_shape'])}, range [{info['skin_table_min']:.3g}, {info['skin_table_max']:.4f}]")
    return 0
