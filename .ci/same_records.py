"""Compare two compare run folders record by record, every field but the timings (ms_per_step, *_seconds).

Usage: python .ci/same_records.py RUN_DIR_A RUN_DIR_B   (exit 1 when any record differs)
"""
import json, sys
IGNORE = {"ms_per_step", "seconds", "train_seconds", "eval_seconds", "elapsed", "time", "started", "finished", "wall_s", "timestamp", "environment"}
def load(d):
    recs = [json.loads(l) for l in open(f"{d}/runs.jsonl") if l.strip()]
    return recs
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in IGNORE and not k.endswith("_seconds") and not k.endswith("_s")}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
a, b = load(sys.argv[1]), load(sys.argv[2])
print(len(a), len(b), "records")
diff = 0
for ra, rb in zip(a, b):
    sa, sb = strip(ra), strip(rb)
    if sa != sb:
        diff += 1
        keys = [k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k)]
        print("differ:", ra.get("method"), ra.get("lang"), keys)
ka = sorted(set().union(*[set(r) for r in a])); 
print("fields:", ka)
ok = diff == 0 and len(a) == len(b)
print("identical records" if ok else f"{diff} differ")
sys.exit(0 if ok else 1)
