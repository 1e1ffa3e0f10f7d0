"""The classroom: the exercise catalogue and its hints, the sandbox a student's code runs in, the `check`
command (one exercise, or grading a class with hidden cases) and the versioned reference outputs (reference/).
It imports the core (optical_ref.ot, ot_torch, losses); never the experiment harness.
"""
