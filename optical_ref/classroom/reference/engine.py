"""The verification engine: run any implementation on the reference cases and compare every field they carry.

One record per kind (:class:`Kind`): how to call an implementation with a case's inputs, and which fields of
its result are compared with which tolerance. ``reference verify`` (researchers) and ``check`` (exercises,
which add hints on top, in :mod:`optical_ref.classroom.check`) both run on this engine; the engine imports neither.

What is compared, per kind (a field the implementation does not return is reported as "not returned", and
is not counted against it, except the kind's main field):

================  ============================================================================================
kind              fields
================  ============================================================================================
sinkhorn          plan; cost = <plan, C>_F (derived from the plan); f and g **up to an additive constant**
                  (f + c, g - c give the same plan) when the result has them (an object with ``.f``/``.g``
                  or a dict), -inf (null in the files) where the expected one is
sinkhorn_fixed    the same, after exactly ``n_iter`` iterations from f = g = 0 (the training setting)
exact_ot          plan, cost
batched_sinkhorn  plan; cost per problem (derived); envelope_grad_C = d sum(cost) / d C with P held fixed,
                  which is the plan itself: checked through the plan
frobenius, kd_*   value
ot_loss           losses; envelope_grad_X = d sum(losses) / d X **with P held fixed**, by autograd through the
                  implementation when its result is a torch tensor with a graph. An implementation that
                  differentiates through the iterations has another gradient on purpose: <P, C>_F is not
                  the entropic objective, so d<P*,C>/dC = P* + <dP*/dC, C>; the exercises therefore do not
                  grade it, ``verify`` does
================  ============================================================================================
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import sysconfig
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import load, max_abs_error


# --------------------------------------------------------------------------------------------------
# Turning inputs and results into arrays
# --------------------------------------------------------------------------------------------------
def _np(x):
    return None if x is None else np.asarray(x, dtype=float)     # null entries become NaN


def _torch(x, dtype=None):
    """A case's array as a tensor; null (padding that holds NaN) becomes NaN."""
    import torch
    return torch.as_tensor(np.asarray(x, dtype=float), dtype=dtype or torch.float64)


def _mask(x):
    import torch
    return torch.tensor(x, dtype=torch.bool)


def to_array(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def fields_of(result, main: str) -> dict:
    """{field: value} of a result: a plain array/number is the main field; an object or dict may carry more."""
    if isinstance(result, dict):
        return dict(result)
    if hasattr(result, main) or hasattr(result, "plan"):
        return {k: getattr(result, k) for k in ("plan", "f", "g", "cost", "losses", "value") if hasattr(result, k)}
    return {main: result}


def potential(values) -> np.ndarray:
    """Potentials with the file's null written back as -inf."""
    return np.asarray([-np.inf if v is None else v for v in np.ravel(np.asarray(values, dtype=object))], dtype=float)


MINUS_INFINITY_FLOOR = -1e300   # languages without -inf in JSON write a huge negative number for it


def potentials_error(f, g, expected_f, expected_g) -> float:
    """Largest error of (f, g) against the expected pair, after the best additive shift (f + c, g - c).
    A potential of a zero-mass entry is -inf; null, -inf and anything below -1e300 (-1e308 written by a
    language whose JSON has no -inf) all mean -inf."""
    f, g = (np.where(v <= MINUS_INFINITY_FLOOR, -np.inf, v) for v in (to_array(f).ravel(), to_array(g).ravel()))
    ef, eg = potential(expected_f), potential(expected_g)
    if f.shape != ef.shape or g.shape != eg.shape:
        return float("inf")
    if not (np.array_equal(np.isfinite(f), np.isfinite(ef)) and np.array_equal(np.isfinite(g), np.isfinite(eg))):
        return float("inf")                     # -inf must be exactly where the zero masses are
    real_f, real_g = np.isfinite(ef), np.isfinite(eg)
    shift = np.mean(f[real_f] - ef[real_f])
    return float(max(np.abs(f[real_f] - shift - ef[real_f]).max(initial=0.0),
                     np.abs(g[real_g] + shift - eg[real_g]).max(initial=0.0)))


# --------------------------------------------------------------------------------------------------
# The kinds
# --------------------------------------------------------------------------------------------------
@dataclass
class Kind:
    name: str
    main: str                   # the field every implementation must return
    call: object                # (fn, inputs) -> result
    compare: object             # (fields, case) -> {field: error}


def _call_sinkhorn(fn, x):
    return fn(_np(x["a"]), _np(x["b"]), _np(x["C"]), x["eps"])


def _call_sinkhorn_fixed(fn, x):
    return fn(_np(x["a"]), _np(x["b"]), _np(x["C"]), x["eps"], x["n_iter"])


def _compare_sinkhorn(fields, case):
    x, e = case["inputs"], case["expected"]
    plan = to_array(fields["plan"])
    errors = {"plan": max_abs_error(plan, e["plan"])}
    if plan.shape == np.shape(e["plan"]):
        errors["cost"] = abs(float((plan * np.asarray(x["C"])).sum()) - e["cost"])
    if fields.get("cost") is not None:     # a reported cost is compared too: the worse of the two counts
        errors["cost"] = max(errors.get("cost", 0.0), abs(float(to_array(fields["cost"])) - e["cost"]))
    if "f" in fields and "g" in fields and fields["f"] is not None and "f" in e:
        errors["f_g_up_to_constant"] = potentials_error(fields["f"], fields["g"], e["f"], e["g"])
    return errors


def _call_exact(fn, x):
    plan, cost = fn(_np(x["a"]), _np(x["b"]), _np(x["C"]))
    return {"plan": plan, "cost": cost}


def _compare_exact(fields, case):
    e = case["expected"]
    return {"plan": max_abs_error(to_array(fields["plan"]), e["plan"]), "cost": abs(float(fields["cost"]) - e["cost"])}


def _call_batched(fn, x):
    return fn(_torch(x["C"]), _mask(x["mask_a"]), _mask(x["mask_b"]), x["eps"])


def _compare_batched(fields, case):
    x, e = case["inputs"], case["expected"]
    plan = to_array(fields["plan"])
    errors = {"plan": max_abs_error(plan, e["plan"])}
    if plan.shape == np.shape(e["plan"]):
        real = np.asarray(x["mask_a"])[:, :, None] & np.asarray(x["mask_b"])[:, None, :]
        C = np.where(real, np.asarray(x["C"], dtype=float), 0.0)   # padded costs may hold anything, NaN too
        errors["cost"] = max_abs_error((plan * C).sum(axis=(1, 2)), e["cost"])
        if "envelope_grad_C" in e:
            errors["envelope_grad_C"] = max_abs_error(plan, e["envelope_grad_C"])   # d cost / d C = P (Danskin)
    return errors


def _value_kind(*names):
    def call(fn, x):
        args = [_np(x[n]) if n in ("P", "C") else (_torch(x[n]) if isinstance(x[n], list) else x[n]) for n in names]
        return fn(*args)

    def compare(fields, case):
        return {"value": abs(float(to_array(fields["value"])) - case["expected"]["value"])}
    return call, compare


def _call_ot_loss(fn, x):
    X = _torch(x["X"]).requires_grad_(True)
    losses = fn(X, _torch(x["Y"]), _mask(x["mask_x"]), _mask(x["mask_y"]), x["eps"])
    result = {"losses": losses}
    if hasattr(losses, "requires_grad") and losses.requires_grad:
        losses.sum().backward()
        result["envelope_grad_X"] = X.grad
    return result


def _compare_ot_loss(fields, case):
    e = case["expected"]
    errors = {"losses": max_abs_error(to_array(fields["losses"]), e["losses"])}
    if fields.get("envelope_grad_X") is not None and "envelope_grad_X" in e:
        errors["envelope_grad_X"] = max_abs_error(to_array(fields["envelope_grad_X"]), e["envelope_grad_X"])
    return errors


KINDS = {   # the engine's half of each reference kind (the other half: REFERENCE_KINDS in __init__.py)
    "sinkhorn": Kind("sinkhorn", "plan", _call_sinkhorn, _compare_sinkhorn),
    "sinkhorn_fixed": Kind("sinkhorn_fixed", "plan", _call_sinkhorn_fixed, _compare_sinkhorn),
    "exact_ot": Kind("exact_ot", "plan", _call_exact, _compare_exact),
    "batched_sinkhorn": Kind("batched_sinkhorn", "plan", _call_batched, _compare_batched),
    "frobenius": Kind("frobenius", "value", *_value_kind("P", "C")),
    "kd_mse": Kind("kd_mse", "value", *_value_kind("student", "teacher")),
    "kd_kl": Kind("kd_kl", "value", *_value_kind("student_logits", "teacher_logits", "T")),
    "ot_loss": Kind("ot_loss", "losses", _call_ot_loss, _compare_ot_loss),
}


# --------------------------------------------------------------------------------------------------
# Running the cases
# --------------------------------------------------------------------------------------------------
@dataclass
class CaseResult:
    name: str
    passed: bool
    error: float | None
    tolerance: float
    hint: str | None = None
    crash: str | None = None
    errors: dict = field(default_factory=dict)      # field -> max abs error
    result: object = None                           # the implementation's main field, for hints

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        if self.crash:
            return f"{status}  {self.name}: {self.crash}"
        detail = ", ".join(f"{k} {v:.3g}" for k, v in self.errors.items())
        text = f"{status}  {self.name}: max error {self.error:.3g} (tolerance {self.tolerance:g}; {detail})"
        return text + (f"\n      hint: {self.hint}" if self.hint else "")


def tolerance_of(case, name: str) -> float:
    tol = case["tolerance"]
    return tol.get(name, tol.get("plan", tol.get("value", 1e-7)))


def _user_frame(err, fn=None) -> str:
    """Where the error happened in the implementation: the traceback trimmed to the student's own frames (files
    in the folder of ``fn``'s file, helper packages included), the deepest of them with its line of code; a
    crash deep inside numpy or torch is shown at the student's line that called it. Without such a frame, the
    deepest frame outside this engine."""
    frames = traceback.extract_tb(err.__traceback__)
    source = getattr(getattr(fn, "__code__", None), "co_filename", None)
    folder = Path(source).resolve().parent if source and Path(source).is_file() else None
    outside = [f for f in frames if Path(f.filename).resolve().parent != Path(__file__).resolve().parent]
    installed = tuple(str(Path(p).resolve()) for p in {sysconfig.get_path(k) for k in ("stdlib", "purelib", "platlib")})
    own = [f for f in outside if folder is not None and Path(f.filename).is_absolute()   # not <frozen ...>
           and Path(f.filename).resolve().is_relative_to(folder)
           and not str(Path(f.filename).resolve()).startswith(installed)]   # a venv inside the student's folder
    where = (own or outside or frames)[-1]
    line = f": {where.line.strip()}" if own and where.line else ""
    return f"{Path(where.filename).name}:{where.lineno}{line}"


def call_case(kind: str, fn, case) -> tuple:
    """Call ``fn`` on one case's inputs: ("ok", {field: value}) or ("crash", message). No expected value is read,
    so this half can run where the implementation runs (the grader's sandbox process)."""
    spec = KINDS[kind]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = spec.call(fn, case["inputs"])
    except Exception as err:  # the implementation may raise anything: it is this case's failure
        return "crash", f"the function raised {type(err).__name__}: {err} (at {_user_frame(err, fn)})"
    fields = fields_of(raw, spec.main)
    if fields.get(spec.main) is None:
        return "crash", f"the function returned None: did it forget `return`? (expected {spec.main})"
    return "ok", fields


def judge_case(kind: str, case, outcome: tuple, hint=None, skip_fields=()) -> CaseResult:
    """Compare the outcome of :func:`call_case` with the case's expected values (and explain a failure)."""
    spec = KINDS[kind]
    main_tol = tolerance_of(case, spec.main)
    status, fields = outcome
    if status != "ok":
        return CaseResult(case["name"], False, None, main_tol, crash=fields)
    try:
        errors = {k: v for k, v in spec.compare(fields, case).items() if k not in skip_fields}
    except (TypeError, ValueError) as err:
        return CaseResult(case["name"], False, None, main_tol, crash=f"the result cannot be read as {spec.main}: {err}")
    failed = {k: v for k, v in errors.items() if not v <= tolerance_of(case, k)}
    passed = not failed
    worst = max(errors.values())
    main_value = fields[spec.main]
    failing_tol = tolerance_of(case, next(iter(failed))) if failed else main_tol
    result = CaseResult(case["name"], passed, worst, failing_tol, errors=errors,
                        result=main_value if spec.main != "plan" else to_array(main_value))
    if not passed:
        shape = np.shape(result.result) if spec.main == "plan" else None
        expected_shape = np.shape(case["expected"].get("plan")) if spec.main == "plan" else None
        if shape is not None and shape != expected_shape:
            transposed = tuple(shape[:-2]) + tuple(shape[-2:][::-1]) == tuple(expected_shape) if len(shape) >= 2 else False
            rows, cols = ("a (mask_a)", "b (mask_b)") if "mask_a" in case["inputs"] else ("a", "b")
            result.hint = (f"wrong shape: the result is {shape}, the expected plan is {expected_shape}"
                           + (f"; transposed plan: P has one row per entry of {rows} and one column per entry of "
                              f"{cols}" if transposed else ""))
        elif hint:
            plain = result.result if spec.main != "value" else float(to_array(main_value))
            result.hint = hint(kind, to_array(plain) if spec.main in ("plan", "losses") else plain, case)
    return result


def run_cases(kind: str, fn, case_filter=None, hint=None, cases=None, profile=None, skip_fields=()) -> list:
    """Run ``fn`` on every case of ``kind`` (or on ``cases``); ``hint(kind, result, case)`` may explain a
    failure; ``profile(case)`` returns tolerances that replace the file's; ``skip_fields`` are not compared."""
    results = []
    for case in (cases if cases is not None else load(kind)["cases"]):
        if profile is not None:
            case = {**case, "tolerance": profile(case)}
        if case_filter and not case_filter(case):
            continue
        results.append(judge_case(kind, case, call_case(kind, fn, case), hint, skip_fields))
    return results


def report(title: str, results: list) -> int:
    print(title)
    for r in results:
        print("  " + r.line())
    n_pass = sum(r.passed for r in results)
    print(f"{n_pass} passed, {len(results) - n_pass} failed")
    return 0 if n_pass == len(results) else 1


def load_function(spec: str):
    """'path/to/file.py:function' or 'package.module:function'."""
    if ":" not in spec:
        raise ValueError(f"--impl {spec!r}: expected FILE.py:FUNCTION or module:FUNCTION")
    target, name = spec.rsplit(":", 1)
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise FileNotFoundError(f"--impl {spec!r}: no file {path}")
        module_spec = importlib.util.spec_from_file_location(f"_checked_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.parent.resolve()))
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:  # a syntax error or a failing import in the user's file
            raise ValueError(f"--impl {spec!r}: importing {path} failed: {type(err).__name__}: {err}") from None
        finally:
            sys.path.pop(0)
    elif Path(target).is_dir():
        raise ValueError(f"--impl {spec!r}: {target} is a folder; give FILE.py:FUNCTION (the file that defines it)")
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise ValueError(f"--impl {spec!r}: no module {target!r} can be imported ({err}); give FILE.py:FUNCTION "
                             "or an installed module:FUNCTION") from None
    if not hasattr(module, name):
        raise ValueError(f"--impl {spec!r}: {target} has no function {name!r}")
    return getattr(module, name)


# --------------------------------------------------------------------------------------------------
# Tolerance profiles, and results produced in any language
# --------------------------------------------------------------------------------------------------
FLOAT32_EPS = 2.0 ** -23      # 1.19e-7, the spacing of float32 numbers near 1


def problem_size(case) -> int:
    """Entries of the largest input array of a case (n m for a plan, B n m for a batch, B n d for tokens)."""
    sizes = [np.asarray(v, dtype=object).size for v in case["inputs"].values() if isinstance(v, list)]
    return max(sizes) if sizes else 1


U32 = 2.0 ** -24              # unit roundoff of float32 (half the spacing near 1)
FLOAT32_SAFETY = 4            # c below: above every ratio measured (rounding only: 0.35; float32 solvers: 0.84)


def conditioning(case) -> float:
    """max |C| / eps of an OT case (1 for the others): how much a relative error in C or in the potentials is
    amplified in the plan, P_ij = exp((f_i + g_j - C_ij) / eps)."""
    x = case["inputs"]
    if "eps" not in x:
        return 1.0
    if "C" in x:
        C = np.asarray(x["C"], dtype=float)      # null (NaN in padding) becomes NaN
        real = np.isfinite(C)
        if "mask_a" in x:                        # padded entries may hold garbage: only the real ones count
            real &= np.asarray(x["mask_a"])[:, :, None] & np.asarray(x["mask_b"])[:, None, :]
        scale = float(np.abs(C[real]).max(initial=0.0))
    else:
        scale = 2.0                      # ot_loss: a cosine cost lies in [0, 2]
    return max(1.0, scale / x["eps"])


def float32_profile(case) -> dict:
    """Tolerances for an implementation that computes in float32, from the arithmetic of the case.

    OT cases: P_ij = exp((f_i + g_j - C_ij) / eps), so a relative rounding error u = 2^-24 in f, g or C becomes
    a relative error of about u x max|C| / eps in the plan: the conditioning of the case, not its size. Each
    field x is held to

        tol32(x) = max(tol64(x), c x u x (max|C| / eps) x max(1, max|x|)),    c = FLOAT32_SAFETY = 4

    c comes from the ratio error / (u x (max|C| / eps) x max(1, |x|)) measured on the reference cases. Rounding
    the exact f, g, C and eps to float32 and nothing else gives ratios up to 0.35 (``python -m optical_ref
    reference float32-rounding`` prints them per case); a plain float32 log-domain solver and the library's
    float32 torch solver, run to convergence, reach 0.84 (measured on this project's machine). c = 4 is above
    both, and tight enough that a solver run at twice the eps fails (tests: the plain and the library float32
    solvers pass every case, the one at twice the eps does not). Cases without eps (frobenius, kd-*) keep the summation bound
    10 x size x 2^-23 x max(1, |x|): each value is a sum over ``size`` rounded terms.
    """
    cond, size = conditioning(case), problem_size(case)
    out = {}
    for name, tol in case["tolerance"].items():
        field = "f" if name == "f_g_up_to_constant" else name
        values = case["expected"].get(field, case["expected"].get("plan"))
        flat = np.asarray([0.0 if v is None else v for v in np.ravel(np.asarray(values, dtype=object))], dtype=float)
        magnitude = max(1.0, float(np.abs(flat[np.isfinite(flat)]).max(initial=0.0)))
        bound = (FLOAT32_SAFETY * U32 * cond * magnitude if "eps" in case["inputs"]
                 else 10 * size * FLOAT32_EPS * magnitude)
        out[name] = max(tol, bound)
    return out


def rounding_only_ratios(kinds=("sinkhorn", "sinkhorn_fixed")) -> list:
    """For every case with exact potentials: round f, g, C and eps to float32, rebuild the plan and its cost in
    float64, and return error / (u x cond x max(1, |x|)) for the plan and the cost (what FLOAT32_SAFETY covers)."""
    ratios = []
    for kind in kinds:
        for case in load(kind)["cases"]:
            x, e = case["inputs"], case["expected"]
            f, g = potential(e["f"]), potential(e["g"])
            C, eps = np.asarray(x["C"], dtype=float), float(x["eps"])
            r32 = (lambda v: np.asarray(v, dtype=np.float32).astype(float))
            with np.errstate(invalid="ignore", over="ignore"):
                plan = np.exp((r32(f)[:, None] + r32(g)[None, :] - r32(C)) / float(np.float32(eps)))
            plan = np.where(np.isfinite(plan), plan, 0.0)
            cond = conditioning(case)
            expected_plan = np.asarray(e["plan"], dtype=float)
            plan_ratio = np.abs(plan - expected_plan).max() / (U32 * cond * max(1.0, np.abs(expected_plan).max()))
            cost_ratio = abs((plan * C).sum() - e["cost"]) / (U32 * cond * max(1.0, abs(e["cost"])))
            ratios.append({"kind": kind, "case": case["name"], "plan": float(plan_ratio), "cost": float(cost_ratio)})
    return ratios


PROFILES = {"float64": None, "float32": float32_profile}


def run_results(kind: str, results: dict, profile=None) -> list:
    """Compare a results file's values (``{case name: {field: value}}``, produced by any language) with the
    reference of ``kind``. A case without a result fails; null stands for -inf in potentials."""
    spec = KINDS[kind]
    out = []
    for case in load(kind)["cases"]:
        if profile is not None:
            case = {**case, "tolerance": profile(case)}
        main_tol = tolerance_of(case, spec.main)
        fields = results.get(case["name"])
        if not isinstance(fields, dict) or fields.get(spec.main) is None:
            out.append(CaseResult(case["name"], False, None, main_tol,
                                  crash=f"no result for this case (expected an object with '{spec.main}')"))
            continue
        try:
            errors = spec.compare(fields, case)
        except (TypeError, ValueError) as err:
            out.append(CaseResult(case["name"], False, None, main_tol, crash=f"the result cannot be read: {err}"))
            continue
        failed = [k for k, v in errors.items() if not v <= tolerance_of(case, k)]
        out.append(CaseResult(case["name"], not failed, max(errors.values()), main_tol, errors=errors))
    return out
