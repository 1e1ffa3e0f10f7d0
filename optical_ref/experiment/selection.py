"""Label-free tuning with an equal budget for every method, on the dev bitext: ``python -m optical_ref select``.

OT gets a fair comparison only if its settings are chosen as carefully as KD's, and without test data. Every
trainable distillation method gets the **same number of configurations** (6), each trained once per language on
the training bitext of one budget (``--budget``, default all pairs; a smaller budget takes the pairs that
``compare`` gives seed 0, since settings that suit 1,149 pairs overfit 20) and evaluated along one learning curve
(``--eval-steps``, default 20 40 80: the steps are chosen from the same run, so they cost no extra training; a
longer curve, e.g. ``--eval-steps 20 40 80 160``, doubles the cost). A configuration at a step is scored
label-free on the **dev** bitext: each dev target sentence (student, query role) retrieves its own
English translation among all dev English sentences (frozen teacher, passage role), pooled and late-interaction
MRR@10; the score is their mean, averaged over the languages. No label and no test sentence is read.

==========  ====================================================  =============================================
method      configurations (lr as a multiple of the default)      why
==========  ====================================================  =============================================
``ot``      lr x {1, 3, 10} x ``ot_eps`` {0.05, 0.1}               eps sets how sharp the plan is
``ot+kd``   lr x {1, 3, 10} x ``kd_weight`` {1, 100}               kd_mse averages over the d dimensions, so at
                                                                  weight 1 the OT term dominates: decades
``kd-kl``   lr x {1, 3, 10} x ``kd_temperature`` {1, 2}            Hinton's temperature
``kd-mse``  lr x {1, 2, 3, 5, 7, 10}                               no knob of its own: six learning rates
``kd-score`` lr x {1, 3, 10} x ``score_temperature`` {0.05, 0.1}   the sharpness of the score distributions
==========  ====================================================  =============================================

Every method's learning rates span the same range (1x to 10x the default): a method whose best rate lies at the
edge of its grid is not tuned. The first selection on e5 (lr x {1, 3} x three knob values) found exactly that:
``ot`` and ``ot+kd`` were better at 3x than at 1x for every knob value, while ``kd-mse`` kept improving far
beyond 3x; each knob kept the two values
that were best at some learning rate there (eps 0.2, T 4 and weight 10 never were) and gave the third place to
lr 10x. Two rules keep a choice honest: dev scores closer than one dev sentence (1 / the smallest dev set) are
ties, won by the cheaper setting (smaller lr, first knob value, fewer steps); and a choice whose learning rate sits
at an edge of the grid, with no rate inside the grid tied with it, gets one more rate beyond that edge (x3 above,
/3 below), for every knob value. ``selection.md`` then says, per method, what still sits at an edge of what was
tried (lr, steps, knob). A finished configuration is kept in ``candidates.jsonl`` of the output folder, so a selection that is
interrupted or extended continues where it stopped (training is deterministic for a seed).

The chosen configuration of each method (its lr, knob and number of steps) is written to ``selection.json``
with every candidate's scores and the spread; ``compare --selection selection.json`` (or a preset that names
the file) trains each method with its own choice.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..data.paths import add_data_dir_argument

KNOBS = {"ot": ("ot_eps", [0.05, 0.1]), "ot+kd": ("kd_weight", [1.0, 100.0]),
         "kd-kl": ("kd_temperature", [1.0, 2.0]), "kd-mse": (None, [None]),
         "kd-score": ("score_temperature", [0.05, 0.1])}
LR_FACTORS = {"kd-mse": [1, 2, 3, 5, 7, 10]}
DEFAULT_LR_FACTORS = [1, 3, 10]
DEFAULT_EVAL_STEPS = [20, 40, 80]
SELECTION_FORMAT = "optical-ref selection"


def add_arguments(parser) -> None:
    from .presets import PRESETS
    parser.add_argument("--preset", default="pretrained", choices=sorted(PRESETS))
    parser.add_argument("--langs", nargs="+", default=None, help="target languages whose dev bitext scores the "
                        "candidates (default: the preset's)")
    parser.add_argument("--methods", nargs="+", default=None, help=f"any of {', '.join(KNOBS)} (default: all)")
    parser.add_argument("--eval-steps", nargs="+", type=int, default=DEFAULT_EVAL_STEPS,
                        help="the learning curve each candidate is scored along (default 20 40 80)")
    parser.add_argument("--budget", default="all", help="the bitext pairs each candidate trains on: a count (the "
                        "subset compare gives seed 0) or 'all' (default); choose settings at the budget you compare at")
    add_data_dir_argument(parser)
    parser.add_argument("--out", default="runs/select", help="output folder (default runs/select)")
    parser.add_argument("--set", dest="settings", action="append", metavar="KEY=VALUE", help="as for compare")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])


def configurations(method: str, base_lr: float, factors=None) -> list:
    """The candidate settings of ``method``: the same number (6) for every method (``factors``: other multiples of
    the base learning rate, for an extension beyond the grid's edge)."""
    knob, values = KNOBS[method]
    factors = factors or LR_FACTORS.get(method, DEFAULT_LR_FACTORS)
    return [{"lr": base_lr * f, **({knob: v} if knob else {})} for f in factors for v in values]


def dev_scores(student, teacher_encoder, tokenizer, pairs, device="cpu") -> dict:
    """Label-free dev scores: target -> English retrieval on the dev bitext, pooled and late MRR@10."""
    from ..evaluate import retrieval_scores
    scores = retrieval_scores(student, teacher_encoder, tokenizer, pairs, device)
    return {"mrr10": scores["mrr10"], "late_mrr10": scores["late_mrr10"],
            "score": (scores["mrr10"] + scores["late_mrr10"]) / 2}


def dev_curve(ctx, method: str, settings, lang: str, eval_steps, frozen_prefix=None, curve=None,
              budget="all") -> tuple:
    """Train one student of ``method`` (seed 0) on ``budget`` of ``lang``'s training bitext of the split ``ctx``
    (the pairs ``compare`` gives seed 0) and score it on the dev bitext after each step in ``eval_steps``:
    ``({step: dev_scores}, training seconds)``, the seconds without the dev scoring. Raises ``TrainingDiverged``
    as ``train_student`` does; the points scored before that are in ``curve`` when the caller passes a dict to
    fill."""
    from ..train import train_student

    _, pairs = ctx.setting.budget_pairs(lang, budget, 0)
    dev = ctx.setting.dev_bitext[lang]
    english = ctx.cache.outputs_for(pairs, method == "kd-score")   # the teacher's side: computed once per split, not timed
    curve, scoring = ({} if curve is None else curve), [0.0]

    def on_eval(step, student, losses):
        started = time.perf_counter()
        curve[step] = dev_scores(student, ctx.teacher.encoder, ctx.tokenizer, dev, ctx.cfg.device)
        scoring[0] += time.perf_counter() - started

    started = time.perf_counter()
    train_student(method, ctx.teacher.student_init, ctx.teacher.head, ctx.tokenizer, [p.target for p in pairs],
                  settings, 0, teacher=english, frozen_prefix=frozen_prefix, eval_steps=eval_steps, on_eval=on_eval)
    return curve, time.perf_counter() - started - scoring[0]


def run_selection(cfg, out: Path, methods=None, eval_steps=DEFAULT_EVAL_STEPS, say=print, budget="all") -> dict:
    """Check the request, then (the folder locked) tune every method of ``methods``: :func:`_select`."""
    from ..config import TrainConfig
    from .presets import parse_budget
    from ..data.settings import resolve_budget
    from .runstore import FolderLock, open_run_folder, save_config
    from .stages import prepare_split, resolve_encoder, stage_setting, use_all_cores

    methods = list(methods or KNOBS)
    unknown = [m for m in methods if m not in KNOBS]
    if unknown:
        raise ValueError(f"--methods: cannot tune {unknown}; choose from {', '.join(KNOBS)}")
    eval_steps = sorted(set(int(s) for s in eval_steps))
    if not eval_steps or eval_steps[0] < 1:
        raise ValueError("--eval-steps: give positive step counts, e.g. 20 40 80 160")
    budget = parse_budget(budget, "--budget")
    tcfg = TrainConfig(**{**cfg.train, "student_steps": eval_steps[-1]})
    out = open_run_folder(out, cfg.as_saved())
    use_all_cores()
    encoder_dir = resolve_encoder(cfg)
    setting = stage_setting(cfg, cfg.split_seeds[0])
    for lang in cfg.langs:
        resolve_budget(budget, len(setting.bitext[lang]), lang)
        if not setting.dev_bitext[lang]:
            raise ValueError(f"{cfg.dataset} has no parallel dev bitext for {lang}; selection needs one (use --dataset mtop)")
    with FolderLock(out):                     # the lock compare takes: one writer of a folder at a time
        save_config(out, cfg.as_saved())
        ctx = prepare_split(cfg, tcfg, cfg.split_seeds[0], encoder_dir, out, setting=setting)
        return _select(cfg, ctx, tcfg, out, methods, eval_steps, say, budget)


def _select(cfg, ctx, tcfg, out: Path, methods, eval_steps, say, budget) -> dict:
    """Train and score every candidate of ``methods`` (reusing those finished before), choose with the tie rule,
    extend a learning rate at the edge of its grid once (:func:`extended_factors`), and write ``selection.json``
    and ``selection.md``."""
    from .runstore import write_json

    setting, teacher, tokenizer = ctx.setting, ctx.teacher, ctx.tokenizer
    done = finished_candidates(out, cfg.langs, eval_steps, budget)
    zero_shot = {lang: dev_scores(teacher.student_init, teacher.encoder, tokenizer, setting.dev_bitext[lang], cfg.device)
                 for lang in cfg.langs}
    tolerance = tie_tolerance(setting, cfg.langs)
    say(f"[select] {len(methods)} methods x 6 configurations x {len(cfg.langs)} languages, budget {budget}, "
        f"curves at {eval_steps}; ties below {tolerance:.4f}; "
        f"zero-shot dev score " + ", ".join(f"{lang} {z['score']:.3f}" for lang, z in zero_shot.items()))
    candidates, chosen, edges = [], {}, {}
    for method in methods:
        run = dict(cfg=cfg, ctx=ctx, tcfg=tcfg, out=out, method=method, eval_steps=eval_steps, say=say, budget=budget,
                   done=done)
        own = train_candidates(configurations(method, tcfg.lr), **run)
        extra = extended_factors(method, own, tcfg.lr, tolerance)
        if extra:
            say(f"  {method}: the chosen learning rate sits at the edge of its grid; one more: x{extra[0]:g}")
            own += train_candidates(configurations(method, tcfg.lr, extra), **run)
        candidates += own
        top = choose(own, tolerance)
        if top is not None:
            chosen[method] = {k: top[k] for k in ("lr", "student_steps", *(k for k in KNOBS[method][:1] if k))}
            scored = [c["score"] for c in own if c["score"] is not None]
            chosen[method].update(dev_score=top["score"], spread=max(scored) - min(scored))
            edges[method] = edges_of(top, own)
    result = {"format": SELECTION_FORMAT, "langs": cfg.langs, "split_seed": cfg.split_seeds[0], "encoder": cfg.encoder,
              "train": cfg.train, "budget": budget, "eval_steps": eval_steps, "zero_shot": zero_shot, "candidates": candidates,
              "chosen": chosen, "edges": edges, "tie_tolerance": tolerance,
              "rule": "per method, among the configurations and steps whose mean over languages of (pooled + late dev "
                      "MRR@10) / 2 is within one dev sentence of the best (less than 1 / the smallest dev set), the "
                      "first listed (smaller lr, first knob value, fewer steps); a learning rate at the edge of its "
                      "grid is extended once in that direction; a configuration that diverged is never chosen"}
    write_json(out / "selection.json", result)
    (out / "selection.md").write_text(selection_markdown(result), encoding="utf-8")
    flags = " ".join(f"--set {m}.{k}={v:g}" for m, c in chosen.items() for k, v in c.items()
                     if k not in ("dev_score", "spread"))
    say(f"[select] chosen: {json.dumps(chosen)}\n         use: compare --selection {out / 'selection.json'} (or {flags})")
    return result


def train_candidates(configs, *, cfg, ctx, tcfg, out, method, eval_steps, say, budget, done) -> list:
    """The scored rows (one per curve step) of each configuration of ``method``, trained or read back."""
    import dataclasses

    from ..train import TrainingDiverged

    rows = []
    for config in configs:
        t0 = time.time()
        curve = done.get(candidate_key(method, config))
        reused = curve is not None
        if not reused:
            curve = {s: {} for s in eval_steps}
            for lang in cfg.langs:
                scores = {}
                try:
                    dev_curve(ctx, method, dataclasses.replace(tcfg, **config), lang, eval_steps, ctx.frozen_prefix,
                              scores, budget)
                except TrainingDiverged as err:
                    say(f"  {method:<7} {config}: {lang} FAILED ({err}); never chosen")
                for step, value in scores.items():
                    curve[step][lang] = value
            append_candidate(out, {"method": method, "config": config, "langs": cfg.langs, "eval_steps": eval_steps,
                                   "budget": budget, "curve": curve, "seconds": round(time.time() - t0, 1)})
        own = candidate_rows(method, config, curve, cfg.langs, eval_steps)
        rows += own
        best = max((r["score"] for r in own if r["score"] is not None), default=None)
        say(f"  {method:<7} " + " ".join(f"{k}={v:g}" for k, v in config.items())
            + (f": best dev score {best:.4f}" if best is not None else ": failed")
            + (f" (done before: {CANDIDATES_FILE})" if reused else f" ({time.time() - t0:.0f} s)"))
    return rows


def tie_tolerance(setting, langs) -> float:
    """One dev sentence: moving one sentence from rank 1 to outside the top 10 changes a language's MRR@10 by 1/n."""
    sizes = [len(setting.dev_bitext[lang]) for lang in langs if setting.dev_bitext.get(lang)]
    return 1.0 / min(sizes) if sizes else 0.0


def choose(rows, tolerance: float = 0.0):
    """The first listed row (smaller lr, first knob value, fewer steps) whose score is within ``tolerance`` of
    the best: differences smaller than one dev sentence are ties, and a tie goes to the cheaper setting."""
    scored = sorted((r for r in rows if r["score"] is not None), key=cost_order)
    if not scored:
        return None
    best = max(r["score"] for r in scored)
    return next(r for r in scored if best - r["score"] < tolerance or r["score"] == best)


def cost_order(row) -> tuple:
    """Smaller learning rate first, then the knob's listed order, then fewer steps."""
    knob, values = KNOBS[row["method"]]
    return row["lr"], values.index(row[knob]) if knob and row.get(knob) in values else 0, row["student_steps"]


def edges_of(top: dict, rows) -> dict:
    """Which of the chosen row's values sit at an edge of what was tried: {"lr"|"student_steps"|knob: "low"|"high"}."""
    out = {}
    for key in ("lr", "student_steps", *(k for k in KNOBS[top["method"]][:1] if k)):
        tried = sorted({r[key] for r in rows})
        if len(tried) > 1 and top[key] in (tried[0], tried[-1]):
            out[key] = "low" if top[key] == tried[0] else "high"
    return out


def extended_factors(method: str, rows, base_lr: float, tolerance: float = 0.0) -> list:
    """One more learning-rate factor beyond the edge the choice sits at (x3 above the top, /3 below the bottom),
    or [] when the choice is inside its grid, when a learning rate inside the grid ties with it (then the edge is
    not what makes it best), or when nothing was chosen."""
    top = choose(rows, tolerance)
    if top is None:
        return []
    factors = LR_FACTORS.get(method, DEFAULT_LR_FACTORS)
    inside = [r for r in rows if r["score"] is not None
              and min(factors) * (1 + 1e-9) < r["lr"] / base_lr < max(factors) * (1 - 1e-9)]
    best = max(r["score"] for r in rows if r["score"] is not None)
    if inside and best - max(r["score"] for r in inside) < tolerance:
        return []                   # a rate inside the grid is as good as the best: the edge is not what makes it
    factor = top["lr"] / base_lr
    if abs(factor - max(factors)) <= 1e-9 * factor:
        return [max(factors) * 3]
    if abs(factor - min(factors)) <= 1e-9 * factor:
        return [min(factors) / 3]
    return []


def candidate_rows(method: str, config: dict, curve: dict, langs, eval_steps) -> list:
    """One row per curve step of a configuration, scored by the mean over ``langs`` of the dev score. A
    configuration that diverged in any language (some step lacks a language's score) is failed at every step,
    including the steps it had reached before diverging: a setting that breaks down in one language of the run is
    never chosen, however good its early points were."""
    diverged = any(len(curve[step]) < len(langs) for step in eval_steps)
    return [{"method": method, **config, "student_steps": step,
             "score": None if diverged else sum(v["score"] for v in curve[step].values()) / len(langs),
             "per_lang": curve[step], "failed": diverged} for step in eval_steps]


CANDIDATES_FILE = "candidates.jsonl"   # one line per finished configuration: a rerun into the same folder reuses it


def candidate_key(method: str, config: dict) -> str:
    return json.dumps({"method": method, **config}, sort_keys=True)


def append_candidate(out: Path, entry: dict) -> None:
    """One finished configuration's curve, appended at once (training is deterministic for a seed, so a candidate
    read back is the candidate a rerun would train)."""
    from .runstore import append_json_line
    append_json_line(out / CANDIDATES_FILE, entry)


def finished_candidates(out: Path, langs, eval_steps, budget="all") -> dict:
    """``{candidate_key: curve}`` of the configurations already finished in ``out`` for these languages, steps and
    budget (an interrupted or extended selection continues where it stopped); a line cut by an interruption is
    skipped. A line without a budget was written before selections had one: it trained on all pairs."""
    path, done = out / CANDIDATES_FILE, {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (entry.get("langs") == list(langs) and entry.get("eval_steps") == list(eval_steps)
                and entry.get("budget", "all") == budget):
            done[candidate_key(entry["method"], entry["config"])] = {int(s): v for s, v in entry["curve"].items()}
    return done


def selection_markdown(result: dict) -> str:
    """The selection as tables: each method's choice with its dev scores and spread, then every candidate."""
    langs = result["langs"]
    budget = result.get("budget", "all")
    lines = [f"# Label-free selection on the dev bitext ({', '.join(langs)}; training budget: "
             f"{'all pairs' if budget == 'all' else f'{budget} pairs'})", "",
             "Score = (pooled + late dev MRR@10) / 2 of target -> English retrieval among the dev pairs, mean over "
             f"{', '.join(langs)}; 6 configurations per method, each scored along one learning curve "
             f"({', '.join(map(str, result['eval_steps']))} steps). No label and no test sentence is read.", "",
             "| method | chosen | dev score | " + " | ".join(langs) + " | spread over its candidates |",
             "|---|---|---|" + "---|" * len(langs) + "---|"]
    zero = result["zero_shot"]
    lines.append(f"| zero-shot | - | {sum(zero[l]['score'] for l in langs) / len(langs):.4f} | "
                 + " | ".join(f"{zero[l]['score']:.4f}" for l in langs) + " | - |")
    for method, chosen in result["chosen"].items():
        top = next(c for c in result["candidates"] if c["method"] == method and c["score"] == chosen["dev_score"]
                   and all(c.get(k) == v for k, v in chosen.items() if k not in ("dev_score", "spread")))
        setting = ", ".join(f"{k} {v:g}" for k, v in chosen.items() if k not in ("dev_score", "spread"))
        lines.append(f"| {method} | {setting} | {chosen['dev_score']:.4f} | "
                     + " | ".join(f"{top['per_lang'][l]['score']:.4f}" for l in langs) + f" | {chosen['spread']:.4f} |")
    if "edges" in result:
        lines += ["", f"Ties: dev scores within {result['tie_tolerance']:.4f} (one dev sentence) of the best count as "
                  "equal, and the cheaper setting is chosen. Where the choice sat at an edge of its learning rates, "
                  "the grid was extended once in that direction. What still sits at an edge of what was tried:", ""]
        lines += [f"- {method}: " + (", ".join(f"{k} at the {side} edge" for k, side in edges.items()) or "interior")
                  for method, edges in result["edges"].items()]
    lines += ["", "Every candidate (dev score at each step; - = diverged):", "",
              "| method | lr | knob | " + " | ".join(f"{s} steps" for s in result["eval_steps"]) + " |",
              "|---|---|---|" + "---|" * len(result["eval_steps"])]
    rows = {}
    for c in result["candidates"]:
        knob = KNOBS[c["method"]][0]
        key = (c["method"], c["lr"], f"{knob} {c[knob]:g}" if knob else "-")
        rows.setdefault(key, {})[c["student_steps"]] = c["score"]
    for (method, lr, knob), scores in rows.items():
        lines.append(f"| {method} | {lr:g} | {knob} | " + " | ".join(
            "-" if scores.get(s) is None else f"{scores[s]:.4f}" for s in result["eval_steps"]) + " |")
    return "\n".join(lines) + "\n"


def method_settings_from(path, encoder="any", methods=None, budgets=None) -> dict:
    """``{method: {lr, student_steps, knob}}`` from a selection file written by :func:`run_selection`, every value
    checked as ``--set`` checks its own (the message names the file). ``encoder`` (unless "any"): the encoder the
    run uses, which must be the one the selection was made for; ``methods``: those that must have a choice;
    ``budgets``: the budgets of the run, one of which must be the one the selection was made at."""
    from .runstore import read_json
    data = read_json(path, "selection", "run `python -m optical_ref select` to write one")
    where = f"--selection {path}"
    if not isinstance(data, dict) or data.get("format") != SELECTION_FORMAT or not isinstance(data.get("chosen"), dict):
        raise ValueError(f"{where}: not a selection file of this version (no \"format\": \"{SELECTION_FORMAT}\" with "
                         "its \"chosen\" settings); run `python -m optical_ref select` again")
    if encoder != "any" and data.get("encoder") != encoder:
        raise ValueError(f"{where}: made for encoder {data.get('encoder') or 'the small BERT'}, but this run uses "
                         f"{encoder or 'the small BERT'}; select again with this encoder")
    made_at = data.get("budget", "all")
    if budgets is not None and str(made_at) not in map(str, budgets):
        raise ValueError(f"{where}: made at budget {made_at}, but this run trains at {', '.join(map(str, budgets))}; "
                         f"settings tuned at one budget need not suit another: select with --budget for each")
    missing = [m for m in methods or [] if m not in data["chosen"]]
    if missing:
        raise ValueError(f"{where}: has no choice for {', '.join(missing)} (it holds {', '.join(data['chosen'])}); "
                         "select for that method, or leave it out")
    return {m: _checked_choice(where, m, c) for m, c in data["chosen"].items()}


def _checked_choice(where: str, method: str, chosen) -> dict:
    """One method's chosen settings, each key a per-method setting and each value of its setting's type."""
    from ..config import METHOD_KEYS, TrainConfig
    from dataclasses import fields

    if not isinstance(chosen, dict):
        raise ValueError(f"{where}: the choice for {method} is not an object of settings")
    types = {f.name: f.type for f in fields(TrainConfig)}
    values = {k: v for k, v in chosen.items() if k not in ("dev_score", "spread")}
    for key, value in values.items():
        if key not in METHOD_KEYS:
            raise ValueError(f"{where}: {method}.{key} is not a setting a method may choose ({', '.join(METHOD_KEYS)})")
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = (isinstance(value, int) and number) if types[key] == "int" else number if types[key] == "float" \
            else isinstance(value, str)
        if not ok:
            raise ValueError(f"{where}: {method}.{key} = {value!r} is not {'an integer' if types[key] == 'int' else 'a number' if types[key] == 'float' else 'a string'}")
    try:
        TrainConfig(**values)
    except ValueError as err:
        raise ValueError(f"{where}: the choice for {method} is out of range ({err})") from None
    return values


def main(args) -> int:
    from .presets import make_config
    from ..config import parse_settings

    if args.methods is not None and not [m for m in args.methods if m != "zero-shot"]:
        raise ValueError("--methods zero-shot: zero-shot has nothing to tune; name a method from "
                         f"{', '.join(KNOBS)}")
    if any(s.split("=", 1)[0].strip().rpartition(".")[2] == "student_steps" for s in args.settings or []):
        raise ValueError("--set student_steps: select trains every candidate to the last of --eval-steps and picks "
                         "the step; give --eval-steps instead")
    cfg = make_config(args.preset, langs=args.langs, data_dir=args.data_dir, device=args.device,
                      methods=["zero-shot", *(args.methods or KNOBS)], train_overrides=parse_settings(args.settings))
    methods = [m for m in args.methods or KNOBS if m != "zero-shot"]   # zero-shot is scored anyway
    run_selection(cfg, Path(args.out), methods, args.eval_steps, budget=args.budget)
    return 0
