"""Command line ``slidesnake-features``: feature stores to and from TRIDENT's and STAMP's h5 files.

::

    slidesnake-features export --format trident|stamp STORE.zarr OUT.h5
    slidesnake-features import --format trident|stamp IN.h5 [--mpp UM_PER_PX] [--slide-id ID]
                               [--encoder NAME] STORE.zarr
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .from_h5 import import_stamp_h5, import_trident_h5
from .interop import FORMATS, export_stamp_h5, export_trident_h5

EXPORTS = {"trident": export_trident_h5, "stamp": export_stamp_h5}
IMPORTS = {"trident": import_trident_h5, "stamp": import_stamp_h5}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``slidesnake-features export|import --format trident|stamp ...``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when a file cannot be read or written (the reason on stderr).
    """
    ap = argparse.ArgumentParser(
        prog="slidesnake-features", description="Feature stores to and from TRIDENT's and STAMP's h5 files."
    )
    commands = ap.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a feature store as an h5 file")
    export.add_argument("--format", choices=FORMATS, required=True)
    export.add_argument("store", type=Path, help="the feature store (.zarr)")
    export.add_argument("out", type=Path, help="the .h5 file to write")
    imp = commands.add_parser("import", help="write an h5 file of TRIDENT or STAMP as a feature store")
    imp.add_argument("--format", choices=FORMATS, required=True)
    imp.add_argument("h5", type=Path, help="the .h5 file to read")
    imp.add_argument(
        "--mpp",
        type=float,
        help="the slide's level-0 microns per pixel (needed for STAMP; TRIDENT: default 10 / magnification)",
    )
    imp.add_argument("--slide-id", help="default: from the file")
    imp.add_argument("--encoder", help="default: from the file")
    imp.add_argument("store", type=Path, help="the feature store to write (.zarr)")
    args = ap.parse_args(argv)
    if args.command == "import" and args.mpp is not None and not args.mpp > 0:
        ap.error("--mpp must be a positive number")
    try:
        if args.command == "export":
            out = EXPORTS[args.format](args.store, args.out)
            print(f"wrote {out} ({args.format})")
        else:
            store = IMPORTS[args.format](
                args.h5, args.store, mpp=args.mpp, slide_id=args.slide_id, encoder=args.encoder
            )
            print(f"wrote {store.path}: {store.count} tiles x {store.dim} features of {store.slide_id}")
    except (OSError, ValueError, KeyError) as err:
        print(f"slidesnake-features: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
