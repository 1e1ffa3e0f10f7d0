"""Every training and OT choice in one place: :class:`TrainConfig`, and ``--set KEY=VALUE`` to change any of it.

The losses (:mod:`optical_ref.losses`), the OT loss (:func:`optical_ref.ot_torch.ot_loss`) and the loops
(:mod:`optical_ref.train`) take these values as arguments and repeat no default of their own, so the
value recorded in ``results.json`` is the value that was used. Choices the OPTICAL paper leaves open are
ours; each is named here and documented in the README ("The method, and the choices that are ours").

Per-encoder defaults: a small encoder trained from scratch needs a large learning rate (5e-4); a
pretrained one is fine-tuned at 2e-5..5e-5 and, on CPU, with its word embeddings frozen.
:func:`defaults_for_encoder` returns those, and ``--set`` overrides them.

The comparison's presets and its checked configuration (``CompareConfig``, ``make_config``) are the experiment
harness's: :mod:`optical_ref.experiment.presets`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path


TEACHER_TRAINING = ("all", "head", "retrieval")


@dataclass
class TrainConfig:
    """Every training choice, with its default (the small from-scratch encoder's)."""

    batch_size: int = 32             # sentences (or bitext pairs) per step
    lr: float = 5e-4                 # AdamW, students and teacher; high because the small encoder starts from scratch
    teacher_lr: float = 0.0          # the teacher's encoder; 0: the same as lr
    head_lr: float = 0.0             # the teacher's intent head (new, randomly initialised); 0: the same as the encoder's
    weight_decay: float = 0.01
    teacher_epochs: int = 30         # English epochs; the epoch with the best English dev accuracy is kept
    teacher_train: str = "all"       # all: encoder + head on English intents; head: the encoder as it is, a linear head on it;
                                     # retrieval: a retrieval model trained on English (see below), then a linear head on it
    teacher_scorer: str = "late"     # retrieval: the teacher's scorer, late (MaxSim over projected tokens) or pooled (cosine)
    proj_dim: int = 128              # retrieval: the matching space, a linear projection of the aligned layer's states
    retrieval_epochs: int = 10       # retrieval: English epochs of contrastive training (best English dev epoch kept)
    retrieval_temperature: float = 0.05   # retrieval: InfoNCE temperature over the teacher's scores
    student_steps: int = 300         # optimisation steps per student, the same for every budget
    kd_temperature: float = 2.0      # Hinton KD temperature T
    kd_weight: float = 1.0           # weight of kd-mse inside ot+kd
    score_temperature: float = 0.05  # kd-score: temperature of the score distributions (scores are cosines in [-1, 1])
    ot_eps: float = 0.05             # entropic regularisation; its unit depends on ot_eps_mode
    ot_eps_mode: str = "absolute"    # absolute: eps = ot_eps; median / std: eps = ot_eps x median / std of C's real entries
    ot_n_iter: int = 50              # fixed Sinkhorn iterations per step (predictable cost)
    ot_grad: str = "envelope"        # envelope (P held fixed) or unrolled (through the iterations)
    ot_cost: str = "cosine"          # cosine (1 - cos) or sq_euclidean
    ot_marginals: str = "uniform"    # token weights: uniform | norm (proportional to token norms) | unbalanced (KL-relaxed)
    ot_tau: float = 1.0              # unbalanced only: strength of the KL penalties on the marginals (inf = balanced)
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

    for key in ("batch_size", "teacher_epochs", "student_steps", "ot_n_iter", "max_length", "proj_dim",
                "retrieval_epochs"):
        need(isinstance(getattr(cfg, key), int) and not isinstance(getattr(cfg, key), bool) and getattr(cfg, key) >= 1,
             key, "expected an integer >= 1")
    for key in ("lr", "ot_eps", "kd_temperature", "ot_tau", "score_temperature", "retrieval_temperature"):
        value = getattr(cfg, key)
        need(isinstance(value, (int, float)) and value > 0 and (value < float("inf") or key == "ot_tau"), key,
             "expected a number > 0")
    # where float32 softmax / exp(-C/eps) keep a meaning (outside: a loss of exactly 0, or every logit equal)
    for key in ("kd_temperature", "score_temperature", "retrieval_temperature"):
        need(0.01 <= getattr(cfg, key) <= 1000, key, "expected 0.01 <= T <= 1000")
    need(1e-4 <= cfg.ot_eps <= 1e3, "ot_eps", "expected 1e-4 <= eps <= 1000 (absolute, or relative to the cost scale)")
    need(cfg.lr <= 1.0, "lr", "expected a learning rate <= 1 (AdamW steps are about lr in size)")
    need(cfg.max_length >= 3, "max_length", "expected at least 3 tokens: the special tokens and one word")
    for key in ("teacher_lr", "head_lr", "weight_decay", "kd_weight"):
        value = getattr(cfg, key)
        need(isinstance(value, (int, float)) and 0 <= value < float("inf"), key, "expected a number >= 0")
    from .ot_torch import COSTS, EPS_MODES, GRADS, MARGINALS   # the solver's own lists of what it accepts

    need(cfg.teacher_train in TEACHER_TRAINING, "teacher_train", f"choose one of {', '.join(TEACHER_TRAINING)}")
    need(cfg.teacher_scorer in ("late", "pooled"), "teacher_scorer", "choose late or pooled")
    need(cfg.ot_cost in COSTS, "ot_cost", f"choose one of {', '.join(COSTS)}")
    need(cfg.ot_marginals in MARGINALS, "ot_marginals", f"choose one of {', '.join(MARGINALS)}")
    need(cfg.ot_grad in GRADS, "ot_grad", f"choose one of {', '.join(GRADS)}")
    need(cfg.ot_eps_mode in EPS_MODES, "ot_eps_mode", f"choose one of {', '.join(EPS_MODES)}")
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


# what a method may set for itself (``--set ot.lr=1e-4``); the rest is shared: the teacher, the encoder's input,
# the frozen layers and the aligned layer (the teacher's English side and the caches are computed once for all)
METHOD_KEYS = ("lr", "weight_decay", "student_steps", "batch_size", "kd_temperature", "kd_weight", "score_temperature",
               "ot_eps", "ot_eps_mode", "ot_n_iter", "ot_grad", "ot_cost", "ot_marginals", "ot_tau")


def parse_settings(items) -> dict:
    """``["lr=3e-5", "ot.ot_eps=0.1"]`` -> ``{"lr": 3e-5, "ot.ot_eps": 0.1}``, each value converted to its field's
    type; ``METHOD.KEY`` sets KEY for that method only (see :func:`split_method_settings`).

    An unknown key lists the valid ones; a value of the wrong type names the key and the expected type.
    """
    from .methods import METHODS

    types = {f.name: f.type for f in fields(TrainConfig)}
    settings = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set ot_eps=0.1")
        name, text = (part.strip() for part in item.split("=", 1))
        method, _, key = name.rpartition(".")
        if method and method not in METHODS:
            raise ValueError(f"--set {item!r}: unknown method {method!r}; METHOD.KEY takes one of {', '.join(METHODS)}")
        if method and key not in METHOD_KEYS:
            raise ValueError(f"--set {item!r}: {key!r} cannot differ between methods; per method: {', '.join(METHOD_KEYS)}")
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
        if name in settings and settings[name] != value:
            raise ValueError(f"--set {name} is given twice with different values ({settings[name]!r} and {value!r})")
        settings[name] = value
    return settings


def split_method_settings(settings: dict) -> tuple:
    """``{"lr": 1, "ot.lr": 2}`` -> (``{"lr": 1}``, ``{"ot": {"lr": 2}}``): shared settings, and per method."""
    shared, per_method = {}, {}
    for name, value in settings.items():
        method, _, key = name.rpartition(".")
        if method:
            per_method.setdefault(method, {})[key] = value
        else:
            shared[name] = value
    return shared, per_method


def defaults_for_encoder(encoder: str | None) -> dict:
    """The defaults that differ for a pretrained encoder (fine-tuning rate, frozen word embeddings, eps)."""
    if encoder is None:
        return {}
    return {"lr": 3e-5, "head_lr": 1e-3, "teacher_train": "head", "freeze": "embeddings", "ot_eps_mode": "median", "ot_eps": 0.1,
            "max_length": 48}


def encoder_layers(encoder) -> int:
    """The number of transformer layers of the encoder a run uses (None: the small encoder built from config)."""
    import json

    from .encoder import DEFAULT_ENCODER
    from .pretrained import KNOWN_ENCODERS
    if encoder is None:
        return DEFAULT_ENCODER["num_hidden_layers"]
    if encoder in KNOWN_ENCODERS:
        return KNOWN_ENCODERS[encoder]["layers"]
    path = Path(encoder) / "config.json"
    try:
        layers = json.loads(path.read_text(encoding="utf-8"))["num_hidden_layers"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"--encoder {encoder}: cannot read num_hidden_layers from {path} ({type(err).__name__}); "
                         "is this a transformers encoder checkpoint?") from None
    return int(layers)


def check_layers(cfg: TrainConfig, layers: int) -> None:
    """``ot_layer`` and ``freeze=embeddings+K`` must name layers the encoder has (hidden states 0..layers)."""
    if not -(layers + 1) <= cfg.ot_layer <= layers:
        raise ValueError(f"setting ot_layer={cfg.ot_layer} is out of range: this encoder has {layers} layers, so "
                         f"ot_layer is 0 (embeddings) .. {layers} (the last), or -1 .. -{layers + 1} from the end")
    if frozen_layers(cfg.freeze) > layers:
        raise ValueError(f"setting freeze={cfg.freeze}: this encoder has only {layers} layers")
    aligned = cfg.ot_layer % (layers + 1)
    if frozen_layers(cfg.freeze) >= max(aligned, 1):
        raise ValueError(f"settings ot_layer={cfg.ot_layer} and freeze={cfg.freeze}: the aligned layer is frozen, so OT "
                         "would train nothing; align a layer above the frozen ones or freeze fewer")


def check_encoder_spec(encoder) -> None:
    if encoder is None:
        return
    from .pretrained import KNOWN_ENCODERS
    if encoder in KNOWN_ENCODERS:
        return
    path = Path(encoder)
    if not path.is_dir():
        raise FileNotFoundError(f"--encoder {encoder}: no such directory; give {' or '.join(KNOWN_ENCODERS)} or a local "
                                "checkpoint folder (config.json, weights, tokenizer files; nothing is downloaded)")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"--encoder {encoder}: {path / 'config.json'} is missing; this folder is not a "
                                "transformers checkpoint (save one with model.save_pretrained and tokenizer.save_pretrained)")
    if not (list(path.glob("*.safetensors")) or list(path.glob("pytorch_model*.bin"))):
        raise FileNotFoundError(f"--encoder {encoder}: no weights (model.safetensors or pytorch_model.bin) in it; save "
                                "the model with model.save_pretrained(folder)")
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                                                    "sentencepiece.bpe.model")):
        raise FileNotFoundError(f"--encoder {encoder}: no tokenizer files in it; save the tokenizer with "
                                "tokenizer.save_pretrained(folder)")
