"""Every training and OT choice in one place: :class:`TrainConfig`, and ``--set KEY=VALUE`` to change any of it.

The losses (:mod:`optical_ref.losses`), the OT loss (:func:`optical_ref.ot_torch.ot_loss`) and the loops
(:mod:`optical_ref.train`) take these values as arguments and repeat no default of their own, so the
value recorded in ``results.json`` is the value that was used. Choices the OPTICAL paper leaves open are
ours; each is named here and documented in the README ("The method, and the choices that are ours").

Per-encoder defaults: a small encoder trained from scratch needs a large learning rate (5e-4); a
pretrained one is fine-tuned at 2e-5..5e-5 and, on CPU, with its word embeddings frozen.
:func:`defaults_for_encoder` returns those, and ``--set`` overrides them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

OT_COSTS = ("cosine", "sq_euclidean")
OT_GRADS = ("envelope", "unrolled")
OT_EPS_MODES = ("absolute", "median", "std")


@dataclass
class TrainConfig:
    """Every training choice, with its default (the small from-scratch encoder's)."""

    batch_size: int = 32             # sentences (or bitext pairs) per step
    lr: float = 5e-4                 # AdamW, students and teacher; high because the small encoder starts from scratch
    teacher_lr: float = 0.0          # the teacher's encoder; 0: the same as lr
    head_lr: float = 0.0             # the teacher's intent head (new, randomly initialised); 0: the same as the encoder's
    weight_decay: float = 0.01
    teacher_epochs: int = 30         # English epochs; the epoch with the best English dev accuracy is kept
    teacher_train: str = "all"       # all: encoder + head on English intents; head: the encoder as it is, a linear head on it
    student_steps: int = 300         # optimisation steps per student, the same for every budget
    kd_temperature: float = 2.0      # Hinton KD temperature T
    kd_weight: float = 1.0           # weight of kd-mse inside ot+kd
    ot_eps: float = 0.05             # entropic regularisation; its unit depends on ot_eps_mode
    ot_eps_mode: str = "absolute"    # absolute: eps = ot_eps; median / std: eps = ot_eps x median / std of C's real entries
    ot_n_iter: int = 50              # fixed Sinkhorn iterations per step (predictable cost)
    ot_grad: str = "envelope"        # envelope (P held fixed) or unrolled (through the iterations)
    ot_cost: str = "cosine"          # cosine (1 - cos) or sq_euclidean
    ot_layer: int = -1               # hidden layer whose token states are aligned (-1: the last)
    freeze: str = "none"             # none | embeddings (word embeddings not trained) | embeddings+K (and the lower K layers)
    max_length: int = 64             # tokens per sentence after truncation
    device: str = "cpu"

    def __post_init__(self):
        check_train_config(self)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def effective_teacher_lr(self) -> float:
        return self.teacher_lr or self.lr

    @property
    def effective_head_lr(self) -> float:
        return self.head_lr or self.effective_teacher_lr


def check_train_config(cfg: TrainConfig) -> None:
    """Every value in range, or a ValueError that names the setting."""
    def need(ok, key, what):
        if not ok:
            raise ValueError(f"setting {key}={getattr(cfg, key)!r} is invalid: {what}")

    for key in ("batch_size", "teacher_epochs", "student_steps", "ot_n_iter", "max_length"):
        need(isinstance(getattr(cfg, key), int) and not isinstance(getattr(cfg, key), bool) and getattr(cfg, key) >= 1,
             key, "expected an integer >= 1")
    for key in ("lr", "ot_eps", "kd_temperature"):
        value = getattr(cfg, key)
        need(isinstance(value, (int, float)) and value > 0 and value < float("inf"), key, "expected a number > 0")
    for key in ("teacher_lr", "head_lr", "weight_decay", "kd_weight"):
        value = getattr(cfg, key)
        need(isinstance(value, (int, float)) and 0 <= value < float("inf"), key, "expected a number >= 0")
    need(cfg.teacher_train in ("all", "head"), "teacher_train", "choose all or head")
    need(cfg.ot_cost in OT_COSTS, "ot_cost", f"choose one of {', '.join(OT_COSTS)}")
    need(cfg.ot_grad in OT_GRADS, "ot_grad", f"choose one of {', '.join(OT_GRADS)}")
    need(cfg.ot_eps_mode in OT_EPS_MODES, "ot_eps_mode", f"choose one of {', '.join(OT_EPS_MODES)}")
    need(frozen_layers(cfg.freeze) is not None, "freeze", "choose none, embeddings, or embeddings+K (K >= 1 lower layers too)")
    need(isinstance(cfg.ot_layer, int) and not isinstance(cfg.ot_layer, bool), "ot_layer",
         "expected an integer (-1 = the last hidden layer, 0 = the embeddings)")
    need(cfg.device in ("cpu", "cuda"), "device", "choose cpu or cuda")


def frozen_layers(freeze: str):
    """none -> -1 (nothing frozen); embeddings -> 0; embeddings+K -> K; anything else -> None."""
    if freeze == "none":
        return -1
    if freeze == "embeddings":
        return 0
    if isinstance(freeze, str) and freeze.startswith("embeddings+") and freeze[len("embeddings+"):].isdigit():
        k = int(freeze[len("embeddings+"):])
        return k if k >= 1 else None
    return None


def parse_settings(items) -> dict:
    """``["lr=3e-5", "ot_eps=0.1"]`` -> ``{"lr": 3e-5, "ot_eps": 0.1}``, each value converted to its field's type.

    An unknown key lists the valid ones; a value of the wrong type names the key and the expected type.
    """
    types = {f.name: f.type for f in fields(TrainConfig)}
    settings = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set ot_eps=0.1")
        key, text = (part.strip() for part in item.split("=", 1))
        if key not in types:
            raise ValueError(f"--set {item!r}: unknown setting {key!r}; valid settings: {', '.join(types)}")
        if key == "device":
            raise ValueError("--set device=...: use --device cpu|cuda")
        kind = types[key]
        try:
            value = int(text) if kind == "int" else float(text) if kind == "float" else text
        except ValueError:
            raise ValueError(f"--set {item!r}: {key} expects {'an integer' if kind == 'int' else 'a number'}, "
                             f"got {text!r}") from None
        if key in settings and settings[key] != value:
            raise ValueError(f"--set {key} is given twice with different values ({settings[key]!r} and {value!r})")
        settings[key] = value
    return settings


def defaults_for_encoder(encoder: str | None) -> dict:
    """The defaults that differ for a pretrained encoder (fine-tuning rate, frozen word embeddings, eps)."""
    if encoder is None:
        return {}
    return {"lr": 3e-5, "head_lr": 1e-3, "teacher_train": "head", "freeze": "embeddings", "ot_eps_mode": "median", "ot_eps": 0.1,
            "max_length": 48}
