"""``python -m optical_ref reference list | regenerate | verify --impl FILE.py:FUNCTION --kind KIND``."""
from __future__ import annotations

from . import KINDS, SIGNATURES, regenerate


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["regenerate", "verify", "list", "float32-rounding"],
                        help="regenerate: rebuild the files from the library; verify: check an implementation")
    parser.add_argument("--impl", help="verify: FILE.py:FUNCTION or module:FUNCTION")
    parser.add_argument("--kind", default="sinkhorn", choices=KINDS, help="verify: which reference file (default sinkhorn)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="regenerate: which files")
    parser.add_argument("--profile", choices=["float64", "float32"], default="float64",
                        help="verify: tolerances for a float64 (the files' own) or a float32 implementation")
    parser.add_argument("--results", metavar="FILE.json",
                        help="verify: a results file written by any language (format: results.schema.json)")


def main(args) -> int:
    if args.action == "list":
        for kind in KINDS:
            print(f"  {kind:<17} {SIGNATURES[kind]}")
        return 0
    if args.action == "regenerate":
        regenerate(args.kinds)
        return 0
    if args.action == "float32-rounding":   # the measurement behind the float32 profile's constant
        from .engine import FLOAT32_SAFETY, rounding_only_ratios
        rows = rounding_only_ratios()
        print("error / (u32 x max|C|/eps x max(1, |x|)) when only f, g, C, eps are rounded to float32:")
        for r in rows:
            print(f"  {r['kind']:<15} {r['case']:<50} plan {r['plan']:.3f}  cost {r['cost']:.3f}")
        print(f"max {max(max(r['plan'], r['cost']) for r in rows):.3f}; the float32 profile uses c = {FLOAT32_SAFETY}")
        return 0
    import json

    from .engine import PROFILES, load_function, report, run_cases, run_results
    profile = PROFILES[args.profile]
    if args.results:
        try:
            data = json.loads(open(args.results, encoding="utf-8").read())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"--results {args.results}: cannot read it as JSON ({err})") from None
        except RecursionError:   # nested deeper than the parser goes: no results file is
            raise ValueError(f"--results {args.results}: nested too deeply to be a results file") from None
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise ValueError(f"--results {args.results}: expected {{\"kind\": ..., \"results\": {{case name: "
                             "{field: value}}}} (see optical_ref/classroom/reference/results.schema.json)")
        kind = data.get("kind", args.kind)
        if kind not in KINDS:
            raise ValueError(f"--results {args.results}: unknown kind {kind!r}; known: {', '.join(KINDS)}")
        try:
            outcome = run_results(kind, data["results"], profile)
        except (KeyError, TypeError, IndexError, AttributeError, RecursionError) as err:   # a damaged entry
            raise ValueError(f"--results {args.results}: a case entry is damaged or not of the schema "
                             f"({type(err).__name__}: {err}); see optical_ref/classroom/reference/results.schema.json") from None
        return report(f"verifying {args.results} against the '{kind}' reference ({args.profile} tolerances)", outcome)
    if not args.impl:
        raise ValueError("verify needs --impl FILE.py:FUNCTION (or module:FUNCTION), or --results FILE.json")
    fn = load_function(args.impl)
    return report(f"verifying {args.impl} against the '{args.kind}' reference ({SIGNATURES[args.kind]}; "
                  f"{args.profile} tolerances); every field the file carries is compared",
                  run_cases(args.kind, fn, profile=profile))
