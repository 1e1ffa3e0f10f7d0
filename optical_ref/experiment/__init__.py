"""The experiment harness: the OT-vs-KD comparison (compare, stages, workers), label-free tuning (selection),
the run store, statistics and report, `distil` with its checkpoint, and the benchmarks.
It imports the core (optical_ref.ot ... optical_ref.data); nothing in the core or the classroom imports it.
"""
