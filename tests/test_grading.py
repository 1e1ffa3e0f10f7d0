"""Grading a class, specified: hidden cases drawn at grading time, a score table, look-up and library-call
cheats scoring 0, the hints for the common mistakes of each exercise, at least three public cases each."""
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from optical_ref.classroom.exercises import EXERCISES, check_exercise
from optical_ref.classroom.check import grade, write_csv
from optical_ref.classroom.reference import load

# A student who solved every exercise with their own code: the instructor's written-out answer key
# (numpy / torch only; ot-loss may call a solver), read from instructor/.
INSTRUCTOR = Path(__file__).resolve().parents[1] / "instructor"
CORRECT = {ex.skeleton: (INSTRUCTOR / ex.skeleton).read_text(encoding="utf-8") for ex in EXERCISES.values()}


def write_student(folder, files):
    folder.mkdir(parents=True)
    for name, code in files.items():
        (folder / name).write_text(textwrap.dedent(code), encoding="utf-8")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    write_student(root / "ada", CORRECT)
    write_student(root / "ben", {**CORRECT, "ex03_frobenius.py": """
        import importlib
        def frobenius(P, C):
            return importlib.import_module("optical" + "_ref.ot").frobenius(P, C)
    """, "ex04_kd_mse.py": """
        from optical_ref.classroom import reference
        def kd_mse(student, teacher):
            for case in reference.load("kd_mse")["cases"]:
                if case["inputs"]["student"] == student.tolist():
                    return case["expected"]["value"]
    """, "ex05_kd_kl.py": """
        from optical_ref.losses import kd_kl as library_version
        def kd_kl(student_logits, teacher_logits, T):
            return library_version(student_logits, teacher_logits, T)
    """})
    write_student(root / "cleo", {"ex03_frobenius.py": CORRECT["ex03_frobenius.py"]})
    return root, grade(root, seed=11, progress=lambda *_: None)


def test_a_correct_class_member_scores_full_marks_on_public_and_hidden_cases(graded):
    _, result = graded
    for name, row in result["students"]["ada"].items():
        assert row["score"] == 1.0 and row["total"] > len(load(EXERCISES[name].kind)["cases"]) // 2, (name, row)
        assert any(case.startswith("hidden-") for case in [*row["failed"]] + ["hidden-"]), name


def test_library_calls_score_zero_whatever_the_route_with_the_reason(graded):
    _, result = graded
    ben = result["students"]["ben"]
    # the module is named at both levels: as the call the watch saw (process level), or as the import that
    # failed because the sandbox does not hold it (namespaces)
    assert ben["frobenius"]["score"] == 0 and "optical_ref.ot" in ben["frobenius"]["note"]
    assert ben["kd-mse"]["score"] == 0 and "optical_ref.classroom.reference.load" in ben["kd-mse"]["note"]
    assert ben["kd-kl"]["score"] == 0 and "optical_ref.losses" in ben["kd-kl"]["note"]
    assert ben["ot-loss"]["score"] == 1.0          # ot-loss may call the solver: its point is the cost and masks


def test_points_are_verified_only_where_the_sandbox_had_no_library_code_within_reach(graded):
    _, result = graded
    ada = result["students"]["ada"]
    if result["isolation"] == "namespaces":         # ot-loss's sandbox holds the solver it may call, and more
        assert {name: row["verified"] for name, row in ada.items()} == {name: name != "ot-loss" for name in ada}
    else:
        assert not any(row["verified"] for row in ada.values())


def test_a_missing_file_scores_zero_for_that_exercise_only(graded):
    _, result = graded
    cleo = result["students"]["cleo"]
    assert cleo["frobenius"]["score"] == 1.0
    assert cleo["kd-kl"]["score"] == 0 and "missing file" in cleo["kd-kl"]["note"]


def test_the_score_table_has_one_row_per_student_and_the_documented_json(graded, tmp_path):
    root, result = graded
    write_csv(result, tmp_path / "grades.csv")
    rows = (tmp_path / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("# optical-ref") and f"seed {result['seed']}" in rows[0]      # reproducible
    assert rows[1].startswith("student,kernel-sinkhorn,") and rows[1].endswith(",total_percent") and len(rows) == 5
    assert "max" not in rows[1]
    entry = result["students"]["ada"]["kd-kl"]
    assert set(entry) >= {"passed", "total", "score", "failed"} and 0 <= entry["score"] <= 1
    json.dumps(result)


def test_hidden_cases_are_reproducible_from_the_printed_seed_and_change_with_it(tmp_path):
    from optical_ref.classroom.reference.hidden import hidden_cases
    first = hidden_cases("sinkhorn", np.random.default_rng(5), 4)
    again = hidden_cases("sinkhorn", np.random.default_rng(5), 4)
    other = hidden_cases("sinkhorn", np.random.default_rng(6), 4)
    assert [c["inputs"]["C"] for c in first] == [c["inputs"]["C"] for c in again]
    assert [c["inputs"]["C"] for c in first] != [c["inputs"]["C"] for c in other]


def test_the_command_line_grades_a_folder_in_one_command(tmp_path, capsys):
    from optical_ref.__main__ import main
    write_student(tmp_path / "class" / "dev", {"ex03_frobenius.py": CORRECT["ex03_frobenius.py"]})
    assert main(["check", "--grade", str(tmp_path / "class"), "--seed", "3", "--json", str(tmp_path / "g.json"),
                 "--csv", str(tmp_path / "g.csv")]) == 0
    assert "seed 3" in capsys.readouterr().out
    saved = json.loads((tmp_path / "g.json").read_text())
    assert saved["students"]["dev"]["frobenius"]["score"] == 1.0 and saved["seed"] == 3 and saved["version"]
    assert (tmp_path / "g.csv").read_text().splitlines()[2].startswith("dev,0.0,0.0,1.0")
    assert not (tmp_path / "class" / "grades.csv").exists()     # never written into the submissions


@pytest.mark.parametrize("kind", ["sinkhorn", "frobenius", "kd_mse", "kd_kl", "ot_loss", "batched_sinkhorn"])
def test_every_exercise_has_at_least_three_public_cases(kind):
    assert len(load(kind)["cases"]) >= 3


# ---- hints for the common mistakes ----------------------------------------------------------------
def hints(results):
    return " ".join(r.hint or r.crash or "" for r in results)


def test_kd_kl_mistakes_are_named():
    import torch.nn.functional as F

    def probabilities(zs, zt, T):
        return T * T * F.kl_div((zs / T).softmax(-1), (zt / T).softmax(-1), reduction="batchmean")

    def mean_reduction(zs, zt, T):
        return T * T * F.kl_div((zs / T).log_softmax(-1), (zt / T).log_softmax(-1), log_target=True, reduction="mean")

    def times_t(zs, zt, T):
        return T * F.kl_div((zs / T).log_softmax(-1), (zt / T).log_softmax(-1), log_target=True, reduction="batchmean")

    assert "log-probabilities" in hints(check_exercise("kd-kl", probabilities))
    assert "reduction='mean'" in hints(check_exercise("kd-kl", mean_reduction))
    assert "instead of T^2" in hints(check_exercise("kd-kl", times_t))


def test_batched_sinkhorn_mistakes_are_named():
    from optical_ref.ot_torch import sinkhorn

    def solve_then_zero(C, mask_a, mask_b, eps):
        real = mask_a[:, :, None] & mask_b[:, None, :]
        C = torch.where(real, C, torch.zeros_like(C))
        return sinkhorn(None, None, C, eps, tol=1e-12, max_iter=100_000).plan * real

    def twenty_iterations(C, mask_a, mask_b, eps):
        return sinkhorn(None, None, C, eps, mask_a=mask_a, mask_b=mask_b, n_iter=20).plan

    assert "zeroed" in hints(check_exercise("batched-sinkhorn", solve_then_zero))
    assert "20 iterations" in hints(check_exercise("batched-sinkhorn", twenty_iterations))


def test_nan_in_padding_and_an_unnormalised_cosine_are_named():
    from optical_ref.classroom.reference.hidden import hidden_cases
    from optical_ref.ot_torch import sinkhorn
    from optical_ref.classroom.exercises import run_cases

    def never_cleans(C, mask_a, mask_b, eps):
        log_a = torch.log(mask_a / mask_a.sum(1, keepdim=True))
        log_b = torch.log(mask_b / mask_b.sum(1, keepdim=True))
        g = torch.zeros_like(log_b)
        for _ in range(200):
            f = log_a - torch.logsumexp(g[:, None, :] - C / eps, dim=2)
            g = log_b - torch.logsumexp(f[:, :, None] - C / eps, dim=1)
        return torch.exp(f[:, :, None] + g[:, None, :] - C / eps)

    hidden = hidden_cases("batched_sinkhorn", np.random.default_rng(0), 2)
    assert "padded entries of C hold NaN" in hints(run_cases("batched_sinkhorn", never_cleans, cases=hidden))

    def unnormalised(X, Y, mask_x, mask_y, eps):
        X = torch.where(mask_x[..., None], X, torch.zeros_like(X))
        return sinkhorn(None, None, 1 - X @ Y.transpose(1, 2), eps, mask_a=mask_x, mask_b=mask_y,
                        tol=1e-12, max_iter=100_000).cost

    assert "unnormalised cosine" in hints(check_exercise("ot-loss", unnormalised))


# ---- a class a course can trust: cheats score 0, no student reaches another ----------------------------
@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    frobenius_only = lambda code: {"ex03_frobenius.py": code}   # noqa: E731
    write_student(root / "a-correct", frobenius_only(CORRECT["ex03_frobenius.py"]))
    write_student(root / "b-reexport", frobenius_only("from optical_ref.ot import frobenius\n"))
    write_student(root / "c-reload", frobenius_only("""
        import importlib
        import optical_ref.ot
        def frobenius(P, C):
            return importlib.reload(optical_ref.ot).frobenius(P, C)
    """))
    write_student(root / "d-lookup", frobenius_only("""
        import json, pathlib, optical_ref
        HERE = pathlib.Path(optical_ref.__file__).parent / "classroom" / "reference"
        CASES = json.loads((HERE / "frobenius.json").read_text())
        def frobenius(P, C):
            for case in CASES["cases"]:
                if case["inputs"]["P"] == P.tolist():
                    return case["expected"]["value"]
            return 0.0
    """))
    write_student(root / "e-exits", frobenius_only("import sys\nsys.exit(3)\n"))
    write_student(root / "f-loops", frobenius_only("""
        def frobenius(P, C):
            while True:
                pass
    """))
    write_student(root / "g-patches", frobenius_only("""
        import optical_ref.classroom.reference.engine as engine
        engine.max_abs_error = lambda *a: 0.0
        engine.judge_case = None
        def frobenius(P, C):
            return 42.0
    """))
    write_student(root / "h-after", frobenius_only("def frobenius(P, C):\n    return 42.0\n"))
    write_student(root / "i-attributes", frobenius_only("""
        import functools
        import optical_ref
        def frobenius(P, C):
            module = getattr(__import__("optical" + "_ref.ot"), "ot")
            found = functools.reduce(getattr, ["frob" + "enius"], module)
            return getattr(found, "__wrapped__", found)(P, C)
    """))
    # at process level, where the watch inside the student's process is what stands between a submission and
    # the library (under namespaces the library is out of reach: tests/test_grader_hardening.py)
    return grade(root, seed=5, progress=lambda *_: None, time_limit=4, isolate="none")["students"]


def test_a_correct_submission_scores_full_marks_in_the_sandbox(hostile_class):
    assert hostile_class["a-correct"]["frobenius"]["score"] == 1.0


def test_a_re_exported_library_function_scores_zero_with_the_reason(hostile_class):
    row = hostile_class["b-reexport"]["frobenius"]
    assert row["score"] == 0 and "not defined in ex03_frobenius.py" in row["note"]


def test_reaching_the_library_through_reload_or_attribute_tricks_scores_zero(hostile_class):
    for student in ("c-reload", "i-attributes"):     # importlib.reload; __import__ + getattr + __wrapped__
        row = hostile_class[student]["frobenius"]
        assert row["score"] == 0 and "optical_ref.ot.frobenius" in row["note"], student


def test_looking_up_public_values_scores_well_below_a_pass(hostile_class):
    row = hostile_class["d-lookup"]["frobenius"]
    assert row["score"] <= 0.3 and row["passed"] == len(load("frobenius")["cases"])


def test_an_exit_or_an_endless_loop_costs_that_student_that_exercise_only(hostile_class):
    assert hostile_class["e-exits"]["frobenius"]["score"] == 0
    assert "exit code 3" in hostile_class["e-exits"]["frobenius"]["note"]
    assert "time limit of 4 s" in hostile_class["f-loops"]["frobenius"]["note"]
    assert hostile_class["a-correct"]["frobenius"]["score"] == 1      # the students around them are untouched


def test_patching_the_engine_changes_no_score(hostile_class):
    assert hostile_class["g-patches"]["frobenius"]["score"] == 0
    assert hostile_class["h-after"]["frobenius"]["score"] == 0      # 42 is wrong for the next student too


def test_hidden_cases_outnumber_public_ones_and_say_what_they_hold():
    from optical_ref.classroom.check import cases_for
    from optical_ref.classroom.reference.hidden import hidden_cases
    for name, exercise in EXERCISES.items():
        cases = [c["name"] for c in cases_for(name, exercise, 0)]
        hidden = [c for c in cases if c.startswith("hidden-")]
        assert len(hidden) > len(cases) - len(hidden), name
    names = [c["name"] for c in hidden_cases("ot_loss", np.random.default_rng(1), 8)]
    assert all(n.endswith(("nan-in-padding", "no-padding")) for n in names)


def test_log_and_kernel_loop_mistakes_are_named():
    from scipy.special import logsumexp

    def k_not_transposed(a, b, C, eps):
        K = np.exp(-C / eps)
        v = np.ones(len(b))
        for _ in range(2000):
            u = a / (K @ v)
            v = b / (K @ u)
        return u[:, None] * K * v[None, :]

    def eps_missing(a, b, C, eps):
        f, g = np.zeros(len(a)), np.zeros(len(b))
        for _ in range(2000):
            f = np.log(a) - logsumexp(g[None, :] - C, axis=1)
            g = np.log(b) - logsumexp(f[:, None] - C, axis=0)
        return np.exp(f[:, None] + g[None, :] - C)

    def eps_misplaced(a, b, C, eps):
        f, g = np.zeros(len(a)), np.zeros(len(b))
        for _ in range(2000):
            f = eps * np.log(a) - logsumexp((g[None, :] - C) / eps, axis=1)
            g = eps * np.log(b) - logsumexp((f[:, None] - C) / eps, axis=0)
        return np.exp((f[:, None] + g[None, :] - C) / eps)

    assert "K instead of K^T" in hints(check_exercise("kernel-sinkhorn", k_not_transposed))
    assert "eps is missing" in hints(check_exercise("log-sinkhorn", eps_missing))
    assert "eps in the wrong place" in hints(check_exercise("log-sinkhorn", eps_misplaced))
    assert "log domain" not in hints(check_exercise("log-sinkhorn", eps_missing)).split("eps is missing")[0][-5:]


def test_a_numpy_exercise_hint_never_mentions_masks():
    def transposed(a, b, C, eps):
        from optical_ref.ot import sinkhorn
        return np.ascontiguousarray(sinkhorn(a, b, C, eps).plan.T)
    text = hints(check_exercise("log-sinkhorn", transposed))
    assert "transposed" in text and "mask" not in text


def test_the_answer_key_is_written_out_and_passes_every_public_case():
    for name, exercise in EXERCISES.items():
        code = CORRECT[exercise.skeleton]
        imports = [line for line in code.splitlines() if line.startswith(("import ", "from "))]
        assert not any("optical_ref" in line for line in imports) or exercise.allowed, exercise.skeleton
        fn = __import__("optical_ref.classroom.exercises", fromlist=["load_function"]).load_function(
            f"{INSTRUCTOR / exercise.skeleton}:{exercise.function}")
        assert all(r.passed for r in check_exercise(name, fn)), name


def test_the_exercise_list_lives_in_one_place_and_every_other_list_matches_it():
    root = Path(__file__).resolve().parents[1]
    table = (root / "tutorials" / "exercises" / "README.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1:4] for line in table.splitlines() if line.startswith("| ") and ".py" in line]
    assert [(n.strip(), f.strip(), t.strip()) for n, f, t in rows] == \
        [(name, ex.skeleton, ex.tutorial) for name, ex in EXERCISES.items()]
    for name, ex in EXERCISES.items():
        skeleton = (root / "tutorials" / "exercises" / ex.skeleton).read_text(encoding="utf-8")
        assert skeleton.startswith(f'"""Exercise {name}:') and f"def {ex.function}(" in skeleton, name
        assert (root / "instructor" / ex.skeleton).is_file(), name


# ---- what the exercises' texts tell students ---------------------------------------------------------------
EXERCISES_DIR = Path(__file__).resolve().parents[1] / "tutorials" / "exercises"


def test_the_sinkhorn_exercises_state_the_norm_of_their_tolerance_as_the_reference_does():
    assert "row-marginal L1 error <= 1e-12" in load("sinkhorn")["description"]    # what the cases were solved to
    for skeleton in ("ex01_kernel_sinkhorn.py", "ex02_log_sinkhorn.py"):
        text = " ".join((EXERCISES_DIR / skeleton).read_text(encoding="utf-8").split())
        assert "in the L1 norm, sum_i |sum_j P_ij - a_i| <= 1e-12" in text, skeleton


def test_the_ot_loss_exercise_says_eps_is_absolute_and_the_loss_must_keep_its_gradient():
    text = " ".join((EXERCISES_DIR / "ex06_ot_loss.py").read_text(encoding="utf-8").split())
    assert "eps is absolute: use it as given" in text and "the gradient reaches X" in text


def test_the_students_readme_does_not_say_where_the_answer_key_is():
    text = (EXERCISES_DIR / "README.md").read_text(encoding="utf-8")
    assert "instructor/" not in text and "answer key" not in text.lower()    # "Instructors: copy..." is fine
