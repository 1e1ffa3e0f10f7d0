"""optical-ref: a numpy-first reference implementation of optimal-transport distillation (OPTICAL) for
cross-lingual transfer, next to plain knowledge-distillation baselines.

The map, one way from top to bottom (nothing reaches back up):

    ot.py          entropic OT in plain numpy (the readable ground truth)
    ot_torch.py    the same maths, batched, padding-masked and differentiable in torch
    data/          MTOP and MTOD loaders, reduced-MTOP splits, low-resource bitext budgets
    text.py        the shared subword tokenizer, trained locally and deterministically
    encoder.py     the small transformer encoder + intent head (or a local pretrained checkpoint)
    losses.py      KD-MSE, KD-KL and the OT distillation loss
    train.py       plain training loops: teacher, students
    evaluate.py    intent accuracy, macro-F1, retrieval (MRR@10, Recall@1), kNN intent accuracy
    methods.py     the method identifiers (zero-shot, kd-mse, kd-kl, ot, ot+kd, target-supervised)
    compare.py     the OT-vs-KD comparison and its records; report.py its summary tables and plots
    check.py       the exercise checker and grader; reference/ versioned reference outputs and the engine
    bench.py       benchmarks (ratios against peers measured in the same run)
    tutorial.py    the tutorials' small command-line helper
    __main__.py    the one command line: python -m optical_ref ...
"""

__version__ = "0.1.0"
