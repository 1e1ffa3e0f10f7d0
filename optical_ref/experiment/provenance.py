"""Where a result came from: the software and machine it ran on (saved with every comparison and benchmark)."""
from __future__ import annotations

import platform

import numpy as np


def environment() -> dict:
    import torch
    import transformers

    from .. import __version__
    return {"optical_ref": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "transformers": transformers.__version__, "machine": platform.machine(),
            "torch_threads": torch.get_num_threads(), "processor": platform.processor(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
