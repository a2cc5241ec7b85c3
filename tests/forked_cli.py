"""`python -m <module> args...` without paying the torch and Lightning import for each command.

A fork server imports them once (multiprocessing's forkserver, which runs no torch op, so no
thread pool crosses a fork); every command is a fresh child forked from it. The child is a real
separate process, as a user's command is: its own argv, working directory, environment, file
descriptors 1 and 2 (so children it starts inherit them), exit status and atexit handlers. Only
the import cost is shared. Tests that send signals to a run start a real interpreter instead."""

from __future__ import annotations

import multiprocessing
import os
import pkgutil
import subprocess
import tempfile
from pathlib import Path

PRELOAD = ["torch", "lightning", "hydra", "scipy.io", "scipy.sparse", "scipy.stats", "sklearn.datasets",
           "sklearn.model_selection", "sklearn.svm", "sklearn.linear_model", "sklearn.multiclass", "sklearn.metrics",
           "sklearn.manifold", "sklearn.decomposition", "mmrepro.train", "mmrepro.launch", "mmrepro.tables.build",
           "mmrepro.tables.figures", "mmrepro.tables.claims", "mmrepro.tables.paired"]
PRELOAD += [f"mmrepro.{package}.{m.name}" for package in ("data", "eval", "models")
            for m in pkgutil.iter_modules([str(Path(__file__).resolve().parent.parent / "mmrepro" / package)])
            if m.name != "__main__"]

_context = None


def _child(module: str, args: list[str], cwd: str, env: dict, out: str, err: str) -> None:
    import atexit
    import runpy
    import sys

    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_TRUNC), fd)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        atexit._run_exitfuncs()  # multiprocessing's children skip them; a real interpreter runs them
        sys.stdout.flush()
        sys.stderr.flush()


def run(module: str, args: list[str], cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    """As subprocess.run([python, -m, module, *args], capture_output=True, text=True, timeout=...)."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        out.touch()
        err.touch()
        child = _context.Process(target=_child, args=(module, list(args), str(cwd), dict(env), str(out), str(err)))
        child.start()
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired([module, *args], timeout, out.read_text(), err.read_text())
        return subprocess.CompletedProcess([module, *args], child.exitcode, out.read_text(), err.read_text())
