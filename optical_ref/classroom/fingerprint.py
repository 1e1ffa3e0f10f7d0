"""Fingerprints of code *up to names*: how the grader recognises a copy of the library's functions that runs
under another file name (pasted into a submission, copied into a helper module, or read as text and
``exec``'d), which the library-call watch of :mod:`optical_ref.classroom.sandbox` cannot see by file name.

A function's fingerprint hashes its bytecode (``co_code``: the operations and the indices of its locals,
globals and constants, which do not depend on what they are called), its argument counts and its
constants, with strings (docstrings, messages) left out and nested functions replaced by their own
fingerprints. Renaming variables, arguments, globals or the function, moving it, or editing its docstring
and messages keeps the fingerprint; adding, removing or reordering a statement changes it: this recognises
copies, not rewrites (that is plagiarism detection, which no grader does by itself). Functions whose
bytecode is shorter than :data:`MIN_CODE_BYTES` are never fingerprinted: a one-line helper written
independently could match the library's by chance.

Fingerprints depend on the Python version; the grader and its sandbox run the same interpreter. Only the
standard library is used here, so the sandbox can load this module before any student code runs.
"""
from __future__ import annotations

import hashlib
import types
from pathlib import Path

MIN_CODE_BYTES = 120      # a student's frobenius is ~60 bytes of 3.11 bytecode; the library's is 478
COPY = " (a copy of its code)"   # appended to a library name when what ran was a copy, not the library


def fingerprint(code) -> str | None:
    """The fingerprint of one function's code object; None for code too short to tell a copy by."""
    if len(code.co_code) < MIN_CODE_BYTES:
        return None
    return _digest(code)


def _digest(code) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(code.co_code)
    h.update(repr((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
                   _shape(code.co_consts))).encode("utf-8"))
    return h.hexdigest()


def _shape(value):
    """A constant with its strings masked and nested code fingerprinted (sets sorted: their order follows
    string hashing, which differs between processes)."""
    if isinstance(value, types.CodeType):
        return "code:" + _digest(value)
    if isinstance(value, (str, bytes)):
        return "str"
    if isinstance(value, tuple):
        return tuple(_shape(v) for v in value)
    if isinstance(value, frozenset):
        return ("frozenset", tuple(sorted(repr(_shape(v)) for v in value)))
    return repr(value)


def functions(code):
    """Every function code object defined anywhere inside ``code`` (a module's or a function's)."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield const
            yield from functions(const)


def compiled(source, filename: str):
    """``source`` compiled (never run); None when it does not compile."""
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def library_fingerprints(package: Path) -> dict:
    """{fingerprint: qualified name} of every function of the package folder ``package`` (optical_ref)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        code = compiled(path.read_bytes(), str(path))
        for fn in functions(code) if code is not None else ():
            key = fingerprint(fn)
            if key is not None:
                found.setdefault(key, f"{module}.{fn.co_qualname}")
    return found


def copies_in(source, filename: str, known: dict) -> list:
    """The library functions (``known``: :func:`library_fingerprints`) that ``source`` holds a copy of."""
    code = compiled(source, filename)
    names = [known.get(fingerprint(fn)) for fn in functions(code)] if code is not None else []
    return list(dict.fromkeys(n for n in names if n))
