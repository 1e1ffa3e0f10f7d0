"""Exercise frobenius: the Frobenius inner product, the cost of a transport plan.

Read first: tutorials/01_transport_plan.py.

Task. Return <P, C>_F = sum_ij P_ij C_ij (a float) for two arrays of the same shape.

Hints.
- It is an elementwise product followed by a sum over all entries: not a matrix product, not a mean.

Check: python -m optical_ref check frobenius --impl tutorials/exercises/ex03_frobenius.py:frobenius
"""
import numpy as np  # noqa: F401 (you will need it)


def frobenius(P, C):
    raise NotImplementedError("sum of the elementwise product")
