"""Benchmarks: ``python -m optical_ref bench sinkhorn|distil|freeze [--json PATH]``.

Every number is a ratio against a peer measured in the same run on the same machine (POT for the OT
solvers, the ``kd-mse`` step for distillation), so tables from different machines compare by their
ratios, not their seconds. Timings are medians over repeats; per-iteration times are differences of
two runs with different iteration counts, so set-up work (building K, checks, the final plan) cancels.
Benchmarks are scripts, never timed unit tests.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np

from ..data.paths import add_data_dir_argument
from ..data.records import LOW_RESOURCE_LANGS
from .provenance import environment  # noqa: F401 (the benchmarks record it)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", choices=["sinkhorn", "distil", "freeze", "distill"], metavar="{sinkhorn,distil,freeze}",
                        help="what to benchmark (distil: ms per training step of every method; freeze: dev quality "
                             "vs step time of freeze=embeddings+K)")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON here")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (median is reported)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512, 2048],
                        help="n = m for the numpy reference vs POT (sinkhorn)")
    add_data_dir_argument(parser)
    parser.add_argument("--encoder", default=None, help="distil: e5-small (or a checkpoint folder) instead of the small encoder")
    parser.add_argument("--steps", type=int, default=None, help="distil: steps per timed run (default 20; 8 with --encoder)")
    parser.add_argument("--freeze", default=None,
                        help="distil: the freeze setting (default: the encoder's); with embeddings+K every method is "
                             "also timed with the frozen prefix cached, and the kd-mse speed-up is reported")
    parser.add_argument("--ks", type=int, nargs="+", default=[0, 3, 6, 9],
                        help="freeze: the numbers K of frozen lower layers to compare (0 = word embeddings only)")
    parser.add_argument("--langs", nargs="+", default=list(LOW_RESOURCE_LANGS), help="freeze: languages whose dev bitext scores K")
    parser.add_argument("--eval-steps", type=int, nargs="+", default=[20, 40, 80],
                        help="freeze: the learning curve each run is scored along")


def main(args) -> int:
    if args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats}: give at least 1 (the median of the repeats is reported)")
    if any(n < 2 for n in args.sizes):
        raise ValueError(f"--sizes {' '.join(map(str, args.sizes))}: every size must be at least 2")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps {args.steps}: give at least 1 step per timed run")
    if args.json:
        from ..files import check_writable_file
        check_writable_file("--json", args.json)
    if args.encoder:
        from ..config import check_encoder_spec
        check_encoder_spec(args.encoder)
    if args.which == "sinkhorn":
        results = bench_sinkhorn(sizes=args.sizes, repeats=args.repeats)
    elif args.which == "freeze":
        if any(k < 0 for k in args.ks) or any(s < 1 for s in args.eval_steps):
            raise ValueError("--ks must be >= 0 and --eval-steps >= 1, e.g. --ks 0 6 --eval-steps 20 40 80")
        results = bench_freeze(ks=args.ks, langs=args.langs, eval_steps=args.eval_steps, data_dir=args.data_dir,
                               encoder=args.encoder or "e5-small")
    else:
        steps = args.steps or (8 if args.encoder else 20)
        results = bench_distil(repeats=args.repeats, data_dir=args.data_dir, steps=steps, encoder=args.encoder,
                                freeze=args.freeze)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
        print(f"\nresults saved to {args.json}")
    return 0


def median_seconds(fn, repeats: int) -> float:
    return interleaved_medians({"fn": fn}, repeats)["fn"]


def interleaved_medians(fns: dict, repeats: int) -> dict:
    """Median seconds of each function, timed in turn within every repeat, so that a slow phase of the
    machine (another process, frequency changes) hits all contenders alike instead of one of them."""
    for fn in fns.values():
        fn()  # warm-up: first-call costs (allocation, thread start) are not what we measure
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def per_iteration_seconds(runs: dict, short: int, long: int, repeats: int) -> dict:
    """(t(long) - t(short)) / (long - short) for each runner: one iteration's cost without the set-up."""
    fns = {}
    for name, run in runs.items():
        fns[(name, short)] = (lambda run=run: run(short))
        fns[(name, long)] = (lambda run=run: run(long))
    t = interleaved_medians(fns, repeats)
    return {name: (t[(name, long)] - t[(name, short)]) / (long - short) for name in runs}


def _print_table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


# --------------------------------------------------------------------------------------------------
def bench_sinkhorn(sizes=(32, 128, 512, 2048), repeats=5) -> dict:
    """The four solver benchmarks in turn; each prints its table and returns its records."""
    warnings.simplefilter("ignore")  # fixed iteration counts never converge on purpose
    results = {"environment": environment()}
    print("optical-ref bench sinkhorn:", results["environment"])
    results["numpy_vs_pot"] = bench_numpy_vs_pot(sizes, repeats)
    results["batched"] = bench_batched(repeats)
    results["bandwidth"] = bench_bandwidth(max(sizes), repeats)
    results["backward"] = bench_backward(repeats)
    return results


def bench_numpy_vs_pot(sizes, repeats) -> list:
    """1. numpy reference vs POT, time per iteration, same iteration counts."""
    import ot as pot

    from .. import ot as ref

    records, rows = [], []
    for n in sizes:
        rng = np.random.default_rng(0)
        C = rng.random((n, n))
        a = np.full(n, 1.0 / n)
        eps = 0.05
        short, long = (20, 120) if n <= 512 else (5, 25)
        for method, pot_method in (("kernel", "sinkhorn"), ("log", "sinkhorn_log")):
            t = per_iteration_seconds(
                {"ours": lambda k: ref.sinkhorn(a, a, C, eps, method=method, tol=1e-300, max_iter=k),
                 "pot": lambda k: pot.sinkhorn(a, a, C, eps, method=pot_method, numItermax=k, stopThr=0.0)},
                short, long, repeats)
            ours, theirs = t["ours"], t["pot"]
            records.append({"n": n, "method": method, "ours_ms_per_iter": ours * 1e3, "pot_ms_per_iter": theirs * 1e3,
                            "ratio": ours / theirs, "floor": 0.6 if n >= 512 else None})
            rows.append([n, method, f"{ours * 1e3:.4f}", f"{theirs * 1e3:.4f}", f"{ours / theirs:.2f}x",
                         "<= 0.6x" if n >= 512 else "-"])
    _print_table("1. numpy reference vs POT ot.sinkhorn / ot.sinkhorn_log: ms per iteration (median)",
                 ["n=m", "method", "ours", "POT", "ratio", "floor"], rows)
    return records


def bench_batched(repeats, B=64, iters=100) -> list:
    """2. a batch of B small problems, float32: the torch solver against POT looped and POT's batched solver."""
    import ot as pot
    import torch
    from ot.batch import solve_batch

    from .. import ot_torch

    records, rows = [], []
    for n in (16, 32):
        torch.manual_seed(0)
        C = torch.rand(B, n, n, dtype=torch.float32)
        C_np = C.numpy()
        eps = 0.05
        # the same tensors as sentence pairs padded to length n: real lengths between n/2 and n
        lengths = torch.randint(n // 2, n + 1, (2, B))
        mask_a = torch.arange(n)[None, :] < lengths[0][:, None]
        mask_b = torch.arange(n)[None, :] < lengths[1][:, None]
        a_np = np.full(n, 1.0 / n, dtype=np.float32)
        for method, pot_method, pot_batch_method in (("log", "sinkhorn_log", "log_sinkhorn"),
                                                     ("kernel", "sinkhorn", "sinkhorn")):
            t = interleaved_medians({
                "torch": lambda: ot_torch.sinkhorn(None, None, C, eps, method=method, n_iter=iters),
                "padded": lambda: ot_torch.sinkhorn(None, None, C, eps, method=method, n_iter=iters,
                                                    mask_a=mask_a, mask_b=mask_b),
                "loop": lambda: [pot.sinkhorn(a_np, a_np, C_np[k], eps, method=pot_method, numItermax=iters,
                                              stopThr=0.0) for k in range(B)],
                "batch": lambda: solve_batch(C, reg=eps, max_iter=iters, tol=0.0, method=pot_batch_method,
                                             grad="detach")}, repeats)
            t_torch, t_padded, t_loop, t_batch = t["torch"], t["padded"], t["loop"], t["batch"]
            records.append({"n": n, "B": B, "iterations": iters, "method": method, "torch_ms": t_torch * 1e3,
                            "torch_padded_ms": t_padded * 1e3, "pot_loop_ms": t_loop * 1e3, "pot_batch_ms": t_batch * 1e3,
                            "speedup_vs_pot_loop": t_loop / t_torch, "speedup_vs_pot_batch": t_batch / t_torch,
                            "padding_overhead": t_padded / t_torch})
            rows.append([f"{n}x{n}", method, f"{t_torch * 1e3:.2f}", f"{t_loop * 1e3:.1f}", f"{t_batch * 1e3:.2f}",
                         f"{t_loop / t_torch:.1f}x", f"{t_batch / t_torch:.2f}x", f"{t_padded / t_torch:.2f}x"])
    _print_table(f"2. B={B} problems, float32, {iters} iterations: ms per batch (median); speed-ups of the torch solver",
                 ["size", "method", "torch", "POT loop", "POT batch", "vs loop", "vs batch", "masked/unmasked"], rows)
    print("   floors: log >= 7x vs POT loop and >= 1x vs POT batch; kernel >= 1x vs POT batch; padded <= 1.5x")
    return records


def bench_bandwidth(n, repeats) -> dict:
    """3. the largest size against memory bandwidth (torch kernel path, float32 as in training)."""
    import torch

    from .. import ot_torch

    C = torch.rand(1, n, n, dtype=torch.float32)
    eps = 0.5
    t_iter = per_iteration_seconds(
        {"torch": lambda k: ot_torch.sinkhorn(None, None, C, eps, method="kernel", n_iter=k)}, 10, 60, repeats)["torch"]
    big = torch.rand(256 * 1024 * 1024 // 4, dtype=torch.float32)   # 256 MB: larger than any cache
    out = torch.empty_like(big)
    t_copy = median_seconds(lambda: out.copy_(big), repeats)
    bandwidth = 2 * big.numel() * 4 / t_copy                      # bytes read + written per second
    bytes_per_iter = 2 * n * n * 4                               # K v and K^T u each read all of K once
    bound = bytes_per_iter / bandwidth
    _print_table(f"3. torch kernel path at n=m={n}, float32, against memory bandwidth (copy of 256 MB)",
                 ["bytes/iter", "copy GB/s", "bound ms", "measured ms", "ratio", "target"],
                 [[f"{bytes_per_iter / 1e6:.1f} MB", f"{bandwidth / 1e9:.1f}", f"{bound * 1e3:.3f}",
                   f"{t_iter * 1e3:.3f}", f"{t_iter / bound:.2f}x", "<= 1.5x"]])
    return {"n": n, "bytes_per_iteration": bytes_per_iter, "copy_bandwidth_GBps": bandwidth / 1e9,
            "lower_bound_ms": bound * 1e3, "measured_ms": t_iter * 1e3, "ratio": t_iter / bound, "target": 1.5}


def bench_backward(repeats, B=64, n=32, iters=50) -> dict:
    """4. backward cost and memory kept for it: unrolled vs envelope gradient."""
    import torch

    from .. import ot_torch

    torch.manual_seed(0)
    C0 = torch.rand(B, n, n, dtype=torch.float32)
    records, rows = {}, []
    for mode in ("unrolled", "envelope"):
        def forward_backward():
            C = C0.clone().requires_grad_(True)
            ot_torch.sinkhorn(None, None, C, 0.05, n_iter=iters, grad=mode).cost.sum().backward()
        t = median_seconds(forward_backward, repeats)
        saved = saved_tensor_bytes(lambda: ot_torch.sinkhorn(None, None, C0.clone().requires_grad_(True), 0.05,
                                                              n_iter=iters, grad=mode).cost.sum())
        records[mode] = {"B": B, "n": n, "iterations": iters, "forward_backward_ms": t * 1e3,
                         "saved_for_backward_MB": saved / 1e6}
        rows.append([mode, f"{t * 1e3:.2f}", f"{saved / 1e6:.2f}"])
    _print_table(f"4. forward + backward, B={B}, {n}x{n}, {iters} iterations, float32",
                 ["grad", "ms", "MB kept for backward"], rows)
    return records


def saved_tensor_bytes(build_graph) -> int:
    """Bytes of the tensors autograd keeps for the backward pass (its peak extra memory)."""
    import torch

    seen, total = set(), 0

    def pack(tensor):
        nonlocal total
        key = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += key[1]
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        build_graph()
    return total


# --------------------------------------------------------------------------------------------------
def bench_distil(repeats=5, data_dir=None, steps=20, encoder=None, freeze=None) -> dict:
    """ms per training step of every method at the default batch size, on real reduced-MTOP sentences, and the
    peak resident memory of the process.

    Small encoder: freshly initialised (a step costs the same whatever the weights). ``encoder="e5-small"``
    (or a checkpoint folder): the pretrained encoder with its per-encoder defaults (frozen word embeddings,
    e5's prefixes, relative eps). The teacher's outputs are precomputed, as in ``compare``. Each step is
    reported relative to the ``kd-mse`` step; the methods are timed in turn within every repeat.

    ``freeze="embeddings+K"``: every method is timed twice in the same run, uncached and with the frozen prefix
    cached (:class:`optical_ref.encoder.FrozenPrefix`, filled once before the timing: in ``compare`` it is filled
    once per split and shared by every run), and ``frozen_prefix_cache`` reports the kd-mse speed-up.
    """
    import dataclasses
    import resource

    import torch

    from ..config import TrainConfig, defaults_for_encoder

    torch.set_num_threads(2)
    base = TrainConfig(**{**defaults_for_encoder(encoder), "student_steps": steps, **({"freeze": freeze} if freeze else {})})
    inputs = distil_bench_inputs(data_dir, encoder, base)
    variants = [("kd-mse", base), ("kd-kl", base), ("target-supervised", base), ("ot", base),
                ("ot+kd", base), ("ot (unrolled grad)", dataclasses.replace(base, ot_grad="unrolled"))]
    results = {"environment": environment(), "encoder": encoder or "small BERT from config", "batch_size": base.batch_size,
               "steps": steps, "ot_n_iter": base.ot_n_iter, "freeze": base.freeze, "methods": {}}
    print("optical-ref bench distil:", results["environment"], "| encoder:", results["encoder"])
    prefix = add_cached_prefix_variants(results, variants, base, inputs)
    time_distil_variants(results, variants, inputs, prefix, repeats, steps)
    results["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_distil_bench(results, base, repeats, steps, encoder, len(inputs["targets"]))
    return results


def distil_bench_inputs(data_dir, encoder, base) -> dict:
    """Thai bitext, tokenizer, the student's starting encoder, a head and the teacher's precomputed outputs."""
    from ..data import reduced_mtop
    from ..encoder import IntentHead, build_encoder, load_pretrained_encoder
    from ..text import load_tokenizer, train_tokenizer
    from ..train import teacher_outputs

    data = reduced_mtop(data_dir, langs=["th"])
    pairs = data.bitext("th")
    if encoder:
        from ..pretrained import KNOWN_ENCODERS, prepare
        folder = prepare(encoder) if encoder in KNOWN_ENCODERS else encoder
        tokenizer = load_tokenizer(folder)
        model = load_pretrained_encoder(folder, max_length=base.max_length)
        student_init, english = model.in_role("query"), model.in_role("passage")
    else:
        tokenizer = train_tokenizer([p.en for p in pairs] + [p.target for p in pairs])
        student_init = english = build_encoder(len(tokenizer), seed=0)
    head = IntentHead(student_init.dim, len(data.intents))
    return {"tokenizer": tokenizer, "student_init": student_init, "head": head,
            "teacher": teacher_outputs(english, head, tokenizer, [p.en for p in pairs]),
            "labels": [data.intents.index(p.intent) for p in pairs], "targets": [p.target for p in pairs]}


def add_cached_prefix_variants(results, variants, base, inputs):
    """With freeze=embeddings+K (K >= 1): fill the frozen-prefix cache once and add each method again, cached,
    plus the default freeze=embeddings kd-mse step; returns the cache (None for K = 0)."""
    import dataclasses

    from ..config import check_layers, frozen_layers
    from ..encoder import FrozenPrefix

    student_init = inputs["student_init"]
    k = frozen_layers(base.freeze)
    check_layers(base, student_init.n_layers)
    if k < 1:
        return None
    prefix = FrozenPrefix(student_init, inputs["tokenizer"], k)
    t0 = time.perf_counter()
    prefix._fill([student_init.prefix + t for t in inputs["targets"]])
    results["frozen_prefix_fill_seconds"] = time.perf_counter() - t0
    variants += [(f"{name} (cached prefix)", cfg) for name, cfg in variants]
    variants.append(("kd-mse (freeze=embeddings, the default)", dataclasses.replace(base, freeze="embeddings")))
    return prefix


def time_distil_variants(results, variants, inputs, prefix, repeats, steps) -> None:
    """Each variant's ms per step (timed in turn within every repeat), relative to the kd-mse step."""
    from ..train import train_student

    def runner(name, cfg):
        method = name.split(" ")[0]
        cached = prefix if name.endswith("(cached prefix)") else None
        return lambda: train_student(method, inputs["student_init"], inputs["head"], inputs["tokenizer"],
                                     inputs["targets"], cfg, 0, teacher=inputs["teacher"],
                                     target_labels=inputs["labels"], frozen_prefix=cached)

    seconds = interleaved_medians({name: runner(name, cfg) for name, cfg in variants}, repeats)
    for name, _ in variants:
        results["methods"][name] = {"ms_per_step": 1000 * seconds[name] / steps}
    if prefix is not None:
        uncached, cached = (results["methods"][n]["ms_per_step"] for n in ("kd-mse", "kd-mse (cached prefix)"))
        default = results["methods"]["kd-mse (freeze=embeddings, the default)"]["ms_per_step"]
        results["frozen_prefix_cache"] = {"freeze": results["freeze"], "uncached_ms_per_step": uncached,
                                          "cached_ms_per_step": cached, "speedup": uncached / cached,
                                          "freeze_embeddings_ms_per_step": default,
                                          "speedup_vs_freeze_embeddings": default / cached}
    kd = results["methods"]["kd-mse"]["ms_per_step"]
    for r in results["methods"].values():
        r["relative_to_kd_mse"] = r["ms_per_step"] / kd


def print_distil_bench(results, base, repeats, steps, encoder, n_targets) -> None:
    rows = [[name, f"{r['ms_per_step']:.1f}", f"{r['relative_to_kd_mse']:.2f}x"] for name, r in results["methods"].items()]
    _print_table(f"ms per training step ({results['encoder']}, batch {base.batch_size}, Thai bitext, {base.ot_n_iter} "
                 f"Sinkhorn iterations, median of {repeats} x {steps} steps, interleaved)",
                 ["method", "ms/step", "vs kd-mse"], rows)
    target = 1.2 if encoder else 1.5
    print(f"   peak resident memory of the process: {results['peak_rss_MB']:.0f} MB")
    print(f"   target: the OT step (envelope gradient, the default) at most {target}x the kd-mse step: "
          f"{'met' if results['methods']['ot']['relative_to_kd_mse'] <= target else 'NOT met'}")
    if "frozen_prefix_cache" in results:
        c = results["frozen_prefix_cache"]
        print(f"   frozen prefix ({base.freeze}) cached: kd-mse step {c['uncached_ms_per_step']:.1f} -> "
              f"{c['cached_ms_per_step']:.1f} ms, {c['speedup']:.2f}x (filled once in "
              f"{results['frozen_prefix_fill_seconds']:.1f} s for {n_targets} sentences); against the default "
              f"freeze=embeddings step ({c['freeze_embeddings_ms_per_step']:.1f} ms): "
              f"{c['speedup_vs_freeze_embeddings']:.2f}x")


def bench_freeze(ks=(0, 3, 6, 9), langs=LOW_RESOURCE_LANGS, methods=("kd-mse", "ot"), eval_steps=(20, 40, 80),
                 data_dir=None, encoder="e5-small") -> dict:
    """How many lower layers to freeze: label-free dev quality against step time, for ``freeze=embeddings+K``.

    For each K, a ``kd-mse`` and an ``ot`` student (the ``pretrained`` preset's settings, seed 0, the whole
    training bitext) are trained per language and scored along one learning curve on the dev bitext with the
    score ``select`` uses ((pooled + late dev MRR@10) / 2; no label, no test sentence). Time is the training
    step alone (the dev evaluations are subtracted); K >= 1 runs with the frozen prefix cached, as ``compare``
    does, and the cache's fill is reported on its own (paid once per split). K = 0 freezes only the word
    embeddings. Quality and time both come from this one run, so the trade-off is read off one table.
    """
    import dataclasses
    import tempfile
    from pathlib import Path

    from ..config import TrainConfig
    from .presets import make_config
    from ..encoder import FrozenPrefix
    from .runstore import open_run_folder
    from .selection import dev_curve, dev_scores
    from .stages import prepare_split, resolve_encoder, use_all_cores

    eval_steps = sorted(set(eval_steps))
    cfg = make_config("pretrained", langs=list(langs), data_dir=data_dir, encoder=encoder,
                      methods=["zero-shot", *methods])
    tcfg = TrainConfig(**{**cfg.train, "student_steps": eval_steps[-1]})
    use_all_cores()
    results = {"environment": environment(), "encoder": encoder, "langs": list(langs), "methods": list(methods),
               "eval_steps": eval_steps, "score": "(pooled + late dev MRR@10) / 2, mean over languages", "ks": {}}
    print("optical-ref bench freeze:", results["environment"], "| encoder:", encoder)
    with tempfile.TemporaryDirectory() as tmp:
        out = open_run_folder(Path(tmp) / "run", cfg.as_saved())
        ctx = prepare_split(cfg, tcfg, cfg.split_seeds[0], resolve_encoder(cfg), out)
        teacher, tokenizer, setting = ctx.teacher, ctx.tokenizer, ctx.setting
        results["zero_shot"] = sum(dev_scores(teacher.student_init, teacher.encoder, tokenizer,
                                              setting.dev_bitext[lang])["score"] for lang in langs) / len(langs)
        for k in ks:
            settings = dataclasses.replace(tcfg, freeze=f"embeddings+{k}" if k else "embeddings")
            prefix, fill = None, 0.0
            if k:
                prefix = FrozenPrefix(teacher.student_init, tokenizer, k)
                t0 = time.perf_counter()
                prefix._fill([teacher.student_init.prefix + p.target for lang in langs for p in setting.bitext[lang]])
                fill = time.perf_counter() - t0
            row = {"fill_seconds": fill, "train_seconds": 0.0, "steps": 0, "curves": {}}
            for method in methods:
                curve = {s: [] for s in eval_steps}
                for lang in langs:
                    scores, seconds = dev_curve(ctx, method, settings, lang, eval_steps, prefix)
                    for step, value in scores.items():
                        curve[step].append(value["score"])
                    row["train_seconds"] += seconds
                    row["steps"] += eval_steps[-1]
                row["curves"][method] = {s: sum(v) / len(v) for s, v in curve.items()}
            row["ms_per_step"] = 1000 * row["train_seconds"] / row["steps"]
            row["best"] = {m: max(c.values()) for m, c in row["curves"].items()}
            results["ks"][k] = row
            print(f"   K={k}: {row['ms_per_step']:.0f} ms/step, best dev score "
                  + ", ".join(f"{m} {v:.4f}" for m, v in row["best"].items()) + (f" (prefix filled in {fill:.0f} s)" if k else ""))
    first = results["ks"][ks[0]]
    rows = []
    for k, row in results["ks"].items():
        row["speedup"] = first["ms_per_step"] / row["ms_per_step"]
        row["loss_vs_first"] = {m: first["best"][m] - row["best"][m] for m in methods}
        rows.append([f"embeddings+{k}" if k else "embeddings", f"{row['ms_per_step']:.0f}", f"{row['speedup']:.2f}x",
                     *(f"{row['best'][m]:.4f}" for m in methods)])
    _print_table(f"freeze=embeddings+K: training step time and best dev score along {eval_steps} "
                 f"({', '.join(langs)}; zero-shot dev score {results['zero_shot']:.4f})",
                 ["freeze", "ms/step", f"vs K={ks[0]}", *(f"{m} dev" for m in methods)], rows)
    return results
