"""The end of a multirun: one summary line, and a non-zero exit status when any member failed.

SweepSummary is a Hydra callback (configs/hydra/default.yaml). It runs in the launching process
after every member has ended, whatever the launcher (in-process, joblib, submitit), and reads the
members' run.json files from the sweep directory: a member without a finished record ("ok") failed,
whether it recorded its error, was interrupted, or died without writing anything (kill -9, OOM).
`python -m mmrepro -m ...` then exits with status 1 (see mmrepro/__main__.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mmrepro.records import RECORD_NAME, read_record

# Failed member numbers of the multiruns this process launched (read by __main__ for its exit status).
FAILED: list[int] = []


def member_status(member_dir: Path) -> str:
    path = member_dir / RECORD_NAME
    if not path.exists():
        return "no record"
    return read_record(path)["status"]


def summarize(sweep_dir: Path) -> tuple[int, int, list[int]]:
    """(finished members, members, failed member numbers) of one sweep directory."""
    members = sorted((int(p.name), p) for p in Path(sweep_dir).iterdir() if p.is_dir() and p.name.isdigit())
    failed = [num for num, path in members if member_status(path) != "ok"]
    return len(members) - len(failed), len(members), failed


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        ok, total, failed = summarize(sweep_dir)
        FAILED.extend(failed)
        detail = f"; failed: {', '.join(map(str, failed))} (see their run.json)" if failed else ""
        print(f"mmrepro: {ok} of {total} members finished{detail}; sweep directory {sweep_dir}", file=sys.stderr)
