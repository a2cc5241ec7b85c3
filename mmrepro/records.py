"""Run records: every run writes run.json (atomically: temp file, then rename) with what it did,
on what data, with which code and hardware, and what it measured. Tables read only these."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from mmrepro import REPO_ROOT

RECORD_NAME = "run.json"


def strict(obj):
    """obj with every NaN and infinity replaced by None: run.json is strict JSON (RFC 8259)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def replace_atomic(path: Path, write) -> None:
    """write(tmp_path) into a temp file beside path, fsync it, then rename it over path (and fsync the
    folder): a reader sees the old file or the new one, never a part-written one, even after kill -9."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_json_atomic(path: Path, obj) -> None:
    text = json.dumps(strict(obj), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"
    replace_atomic(path, lambda tmp: tmp.write_text(text))


GENERATED = ("results", "runs")  # written by runs and table builds: not code, so they never make a run "dirty"


def git_state() -> dict:
    """The commit and whether tracked code differs from it (changes under GENERATED do not count)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    try:
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":(exclude){p}" for p in GENERATED))
        return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(changed)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment() -> dict:
    import hydra
    import lightning
    import numpy
    import sklearn
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "versions": {"torch": torch.__version__, "lightning": lightning.__version__, "hydra": hydra.__version__,
                     "sklearn": sklearn.__version__, "numpy": numpy.__version__},
        "hardware": {
            "cpu": cpu,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "platform": platform.platform(),
    }


def read_record(path: Path) -> dict:
    """One run.json. A file that is unreadable, not JSON or not a JSON object (truncated by a crash,
    emptied, hand-edited) gives a one-line warning on stderr and a stub with status "unreadable",
    rebuilt from the run's .hydra/ files (table, choices, seed) so that a table can show the cell it
    belongs to as unreadable instead of hiding it."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text())
        check_record(rec)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        reason = " ".join(str(e).split())[:120]
        print(f"mmrepro: warning: record unreadable: {path} ({type(e).__name__}: {reason})", file=sys.stderr)
        rec = {"status": "unreadable", "error": f"record unreadable: {path}", **hydra_identity(path.parent)}
        if path.parent.name.isdigit():  # a sweep member: <sweep dir>/<n>/run.json
            rec["sweep"] = {"dir": str(path.parent.parent), "num": int(path.parent.name)}
    rec["_path"] = str(path)
    return rec


# The keys a table reads from a record of each status, and their JSON types.
REQUIRED = {
    "ok": {"metrics": dict, "choices": dict, "data": dict, "training": dict, "config": dict, "run_dir": str},
    "failed": {"error": str, "choices": dict},
    "interrupted": {"error": str, "choices": dict},
}


def check_record(rec) -> None:
    """ValueError unless rec is a run record a table can read (REQUIRED)."""
    if not isinstance(rec, dict) or rec.get("status") not in REQUIRED:
        status = rec.get("status") if isinstance(rec, dict) else None
        raise ValueError(f"a JSON {type(rec).__name__} with status {status!r}, not a run record")
    for key, kind in REQUIRED[rec["status"]].items():
        if not isinstance(rec.get(key), kind):
            raise ValueError(f"its {key!r} is {type(rec.get(key)).__name__}, not {kind.__name__}")


def hydra_identity(run_dir: Path) -> dict:
    """table, choices and seed of a run directory, from the .hydra/ files Hydra wrote at its start."""
    from omegaconf import OmegaConf

    out = {}
    try:
        cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        out["table"] = OmegaConf.to_container(cfg.get("table")) if cfg.get("table") else None
        out["seed"] = cfg.get("seed")
        out["config"] = OmegaConf.to_container(cfg, resolve=False)
        out["choices"] = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.runtime.choices)
    except Exception:  # noqa: BLE001 - an identity we cannot rebuild is simply absent
        pass
    return out


def read_records(runs_dir: Path) -> list[dict]:
    """Every run.json below runs_dir (see read_record for the unreadable ones)."""
    return [read_record(path) for path in sorted(Path(runs_dir).rglob(RECORD_NAME))]
