"""The top-level `compile` switch: a training loss through torch.compile.

`compile=true` compiles with inductor (C++ code generation on CPU, Triton on CUDA); a string names
another torch.compile backend (`aot_eager` traces without generating code: the tests' fast check).
It reaches single runs (VariationalModule.training_loss) and batched groups (the stacked loss,
mmrepro/batched.py) alike. Shapes are static (`dynamic=False`: a last short batch compiles once
more); a Python float argument would be baked into the graph, so callers pass warm-up betas as
tensors. Inductor draws its random numbers from its own stream, seeded from torch's generator: a
compiled run repeats itself from its seed and resumes bit-identically after kill -9
(tests/test_reliability.py), but it is not draw for draw the eager run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch

from mmrepro.errors import ConfigError


def check_backend(value) -> bool | str:
    """False, True (inductor) or the name of a registered torch.compile backend."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        known = torch._dynamo.list_backends(exclude_tags=())
        if value in known:
            return value
        raise ConfigError("compile", f"unknown torch.compile backend {value!r}; allowed: true (inductor), false, "
                          "or a name torch._dynamo.list_backends() knows (aot_eager, eager, ...)")
    raise ConfigError("compile", f"expected true, false or a backend name, got {value!r}")


def compiled(fn: Callable, backend: bool | str) -> Callable:
    """fn through torch.compile with `backend` (True: inductor), static shapes."""
    return torch.compile(fn, dynamic=False, **({"backend": backend} if isinstance(backend, str) else {}))


def compile_training(model, backend: bool | str) -> None:
    """A single run's model: its training loss compiled (VariationalModule.compile_loss), or, for a
    model whose gradients are written by hand (the MRBMs, MDRNN), a one-line note that it trains eager."""
    if not backend:
        return
    if hasattr(model, "compile_loss"):
        model.compile_loss(backend)
    else:
        note_eager(type(model).__name__, backend)


def note_eager(name: str, backend: bool | str) -> None:
    print(f"mmrepro: compile={str(backend).lower()}: {name} trains eager (its gradients are written by hand; "
          "only the variational models' losses compile)", file=sys.stderr)
