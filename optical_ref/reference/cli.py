"""``python -m optical_ref reference list | regenerate | verify --impl FILE.py:FUNCTION --kind KIND``."""
from __future__ import annotations

from . import KINDS, SIGNATURES, regenerate


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["regenerate", "verify", "list"],
                        help="regenerate: rebuild the files from the library; verify: check an implementation")
    parser.add_argument("--impl", help="verify: FILE.py:FUNCTION or module:FUNCTION")
    parser.add_argument("--kind", default="sinkhorn", choices=KINDS, help="verify: which reference file (default sinkhorn)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="regenerate: which files")


def main(args) -> int:
    if args.action == "list":
        for kind in KINDS:
            print(f"  {kind:<17} {SIGNATURES[kind]}")
        return 0
    if args.action == "regenerate":
        regenerate(args.kinds)
        return 0
    from .engine import load_function, report, run_cases
    if not args.impl:
        raise SystemExit("error: verify needs --impl FILE.py:FUNCTION (or module:FUNCTION)")
    try:
        fn = load_function(args.impl)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    return report(f"verifying {args.impl} against the '{args.kind}' reference ({SIGNATURES[args.kind]}); "
                  "every field the file carries is compared", run_cases(args.kind, fn))
