"""``bioface specular-targets``: specular pseudo ground truth for datasets."""

from __future__ import annotations

import functools
import multiprocessing
import os


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "specular-targets",
        help="write specular targets (Kim et al. 2013) for face files and photo folders",
        description=(
            "For every image file X (HDF5 with a zx_7 dataset, or a photo) write X_specular.hdf5 "
            "holding float32 'specular' (refined) and 'specular_dark' (plain dark channel), each "
            "(N, H, W) in linear intensity. Sources are never modified. An interrupted run resumes."
        ),
    )
    parser.add_argument("data", nargs="+", metavar="DATA", help="HDF5 files, photos, or folders of them")
    parser.add_argument("--out", metavar="DIR", help="write sidecars here instead of beside each file")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: number of cores)"
    )
    parser.add_argument("--chunk", type=int, default=256, help="faces solved together (default 256)")
    parser.add_argument(
        "--illuminant",
        choices=("white", "estimate"),
        default="white",
        help="assume white-balanced images (default) or estimate the light colour per image",
    )
    parser.add_argument("--curve", choices=("srgb", "gamma2.2"), default="srgb", help="linearisation curve")
    parser.add_argument(
        "--geometry",
        choices=("light", "none"),
        default="light",
        help=(
            "light (default): for face files with normals (zx_7 channels 3-5), weight the refined map by the "
            "lobe of the light fitted from the shading and the surface's convexity; none: colour only (the "
            "former default; photos and files without normals always get it)"
        ),
    )
    parser.add_argument(
        "--max-size", type=int, default=1024, help="shrink photos larger than this (pixels; 0: never)"
    )
    parser.add_argument("--overwrite", action="store_true", help="recompute sidecars that already exist")
    parser.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from bioface_tf import specular
    from bioface_tf import specular_targets as targets
    from bioface_tf.errors import BioFaceError

    if args.workers < 1 or args.chunk < 1:
        raise BioFaceError("--workers and --chunk must be at least 1")
    options = targets.TargetOptions(
        illuminant=args.illuminant,
        curve=args.curve,
        params=specular.RefinementParams(geometry=args.geometry),
        chunk=args.chunk,
        max_size=args.max_size,
    )
    sources = targets.find_sources(args.data, options)
    todo = []
    for source in sources:
        path = targets.sidecar_path(source.path, args.out)
        if path.exists() and not args.overwrite:
            print(f"{path}: exists, skipped")
            continue
        todo.append(targets.Sidecar(source, path, options))
    jobs = [(sidecar, span) for sidecar in todo for span in sidecar.pending()]
    total = sum(sidecar.source.n for sidecar in todo)
    already = total - sum(stop - start for _, (start, stop) in jobs)
    empty_masks = 0
    with tqdm(total=total, initial=already, unit="face", desc="specular targets", disable=not jobs) as progress:
        with _pool(args.workers) as pool:
            tasks = [(i, sidecar.source, start, stop) for i, (sidecar, (start, stop)) in enumerate(jobs)]
            compute = functools.partial(_compute, options=options)
            results = pool.imap_unordered(compute, tasks) if pool else map(compute, tasks)
            for i, chunk in results:
                jobs[i][0].write(chunk)
                empty_masks += chunk.empty_masks
                progress.update(len(chunk.specular))
    for sidecar in todo:
        sidecar.finish()
        print(f"{sidecar.path}: {sidecar.source.n} images")
    if empty_masks:
        print(f"warning: {empty_masks} faces have an empty mask; their refined targets are zero")
    return 0


def _compute(task, options):
    from bioface_tf import specular_targets as targets

    index, source, start, stop = task
    return index, targets.compute_chunk(source, start, stop, options)


class _pool:
    """A process pool, or ``None`` for one worker (no processes started).

    Workers are spawned, not forked: a fork of a process that has loaded
    TensorFlow (a training script, the test suite) inherits its locked
    thread pools and hangs.
    """

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = None

    def __enter__(self):
        if self.workers > 1:
            self.pool = multiprocessing.get_context("spawn").Pool(self.workers, initializer=_single_threaded)
        return self.pool

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        return False


def _single_threaded():
    import cv2

    cv2.setNumThreads(1)
