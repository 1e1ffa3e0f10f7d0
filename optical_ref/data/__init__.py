"""The data layer: MTOP and MTOD loaders, reduced-MTOP splits, nested bitext budgets.

One format per file: ``mtop.py`` (parallel JSON and the official TSV release), ``mtod.py`` (CoNLL-U and
the train.tsv bitext), ``splits.py`` (reduced MTOP and budgets), ``paths.py`` (where the data is),
``summary.py`` (``python -m optical_ref data-summary``), ``fetch.py`` (``python -m optical_ref fetch DATASET``: pinned,
checksummed downloads into the user cache), ``settings.py`` (which sentences train, distil and test).
"""
from .mtod import load_conllu, load_mtod, load_mtod_bitext
from .mtop import intent_of_parse, load_mtop, load_mtop_json, load_mtop_tsv
from .paths import find_data_dir
from .records import (LOW_RESOURCE_LANGS, MTOD_LANGS, MTOP_LANGS, BitextPair, DataFormatError, Utterance,
                      check_langs)
from .splits import ReducedMTOP, bitext_budget, reduced_mtop

__all__ = [
    "BitextPair", "DataFormatError", "LOW_RESOURCE_LANGS", "MTOD_LANGS", "MTOP_LANGS", "ReducedMTOP",
    "Utterance", "bitext_budget", "check_langs", "find_data_dir", "intent_of_parse", "load_conllu",
    "load_mtod", "load_mtod_bitext", "load_mtop", "load_mtop_json", "load_mtop_tsv", "reduced_mtop",
]
