"""Independent runs side by side: ``compare --workers N`` on one machine.

The comparison is a grid of independent runs, so N processes each take whole runs from a shared list. The main
process trains (or reuses) the split's teacher first and saves it, so each worker only loads it; each worker
builds its own evaluation pools and caches once, then trains and evaluates the runs it is given, and returns
their records; the main process alone appends them to ``runs.jsonl`` (one writer: no interleaved line) and
prints one line per finished run. torch's threads are split between the workers (``cores // N`` each, at least
one). Every run seeds its own random state, so a record does not depend on the process that made it.

Processes are started with ``spawn`` (a clean interpreter: forking a process that already runs torch's thread
pools can deadlock).
"""
from __future__ import annotations

import multiprocessing
import os
import sys

_CONTEXT = None   # the worker's SplitContext, built once by _init


def _init(saved_cfg: dict, split_seed: int, encoder_dir, out, threads: int, save_students: bool) -> None:
    global _CONTEXT
    import torch

    from .presets import CompareConfig
    from ..config import TrainConfig
    from .stages import prepare_split

    torch.set_num_threads(threads)
    sys.stdout = open(os.devnull, "w")        # the main process reports; a worker's setup lines would repeat it
    cfg = CompareConfig(**saved_cfg)
    _CONTEXT = prepare_split(cfg, TrainConfig(**cfg.train), split_seed, encoder_dir, out, save_students=save_students)


def _run(job) -> list:
    from .stages import run_one
    return run_one(_CONTEXT, job)


def run_in_processes(cfg, split_seed: int, encoder_dir, out, jobs: list, workers: int, save_students=False):
    """Yield the records of each run of ``jobs`` (a list per run) as the ``workers`` processes finish them."""
    workers = min(workers, len(jobs))         # a process per run left at most: more would only start and wait
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init, initargs=(cfg.as_saved(), split_seed, encoder_dir, str(out),
                                                             threads, save_students)) as pool:
        yield from pool.imap_unordered(_run, jobs)
