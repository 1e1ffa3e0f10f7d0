"""Two helpers every tutorial script uses: its command line (``--out DIR``, ``--smoke``, ``--data-dir DIR``) and
saving figures.

Figures go to ``--out`` (default: a fresh temporary folder), never into the repository.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def setup(doc: str):
    """Parse ``--out`` and ``--smoke`` (small settings, used by the tests); returns (out folder, smoke)."""
    from .data.paths import add_data_dir_argument
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the figures (default: a new temporary folder)")
    parser.add_argument("--smoke", action="store_true", help="tiny settings: just check that it runs")
    add_data_dir_argument(parser)
    args, _ = parser.parse_known_args(sys.argv[1:] if "ipykernel" not in sys.modules else [])
    if args.data_dir:   # every loader reads $OPTICAL_REF_DATA before ../shared/data: the flag reaches all of them
        import os
        os.environ["OPTICAL_REF_DATA"] = str(Path(args.data_dir).resolve())
        from .data import find_data_dir
        find_data_dir(None)   # a wrong folder fails here, with the list of places looked
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="optical-ref-tutorial-"))
    out.mkdir(parents=True, exist_ok=True)
    import matplotlib
    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    return out, args.smoke


def savefig(fig, out: Path, name: str) -> Path:
    path = Path(out) / name
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")
    return path
