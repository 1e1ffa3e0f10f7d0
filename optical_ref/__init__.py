"""optical-ref: a numpy-first reference implementation of optimal-transport distillation (OPTICAL) for
cross-lingual transfer, next to plain knowledge-distillation baselines.

The module map (the core at the top of the package, then ``experiment/``, then ``classroom/``, in dependency
order) is the README's "The module map"; a test holds it to the imports, so it is the only one.
"""

__version__ = "0.1.0"
