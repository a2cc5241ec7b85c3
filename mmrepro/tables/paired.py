"""Statistics the tables compute across runs: McNemar's exact paired test on the same test points,
and the seed-mean learning curve with the epoch where it stops improving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import binomtest


def predictions(record: dict, key: str = "predicted") -> np.ndarray | None:
    """(predicted, label) of a finished run's test points (`key` of its test_predictions.npz: the
    linear probe saves one per query, `predicted/<query>`), or None where the run saved none."""
    path = Path(record.get("run_dir", "")) / "test_predictions.npz"
    if record.get("status") != "ok" or not path.is_file():
        return None
    d = np.load(path)
    return np.stack([d[key], d["label"]]) if key in d.files else None


def mcnemar(records_a: list[dict], records_b: list[dict], key: str = "predicted") -> tuple[list, int, int, float] | None:
    """Pooled over the seeds both sides ran: (seeds, only A wrong, only B wrong, two-sided p)."""
    a = {r.get("seed"): predictions(r, key) for r in records_a}
    b = {r.get("seed"): predictions(r, key) for r in records_b}
    seeds = sorted(s for s in a if a[s] is not None and b.get(s) is not None and a[s].shape == b[s].shape
                   and np.array_equal(a[s][1], b[s][1]))
    if not seeds:
        return None
    only_a = sum(int(np.sum((a[s][0] != a[s][1]) & (b[s][0] == b[s][1]))) for s in seeds)
    only_b = sum(int(np.sum((b[s][0] != b[s][1]) & (a[s][0] == a[s][1]))) for s in seeds)
    p = 1.0 if only_a + only_b == 0 else binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    return seeds, only_a, only_b, float(p)


def mean_curve(records: list[dict], metric: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(epochs, mean over seeds, seeds) of the runs' per-epoch `metric`, over the epochs all share."""
    curves = [r["curves"] for r in records if r.get("status") == "ok" and metric in (r.get("curves") or {})]
    if not curves:
        return np.array([]), np.array([]), 0
    n = min(len(c[metric]) for c in curves)
    values = np.mean([np.asarray(c[metric][:n], dtype=float) for c in curves], 0)
    return np.asarray(curves[0]["epoch"][:n]), values, len(curves)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving mean (the first points average what exists so far)."""
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def smoothed_curve(epochs: np.ndarray, values: np.ndarray, window: int) -> np.ndarray:
    """The trailing `window`-epoch moving mean: a run validated every k epochs is smoothed over
    window / k points."""
    step = float(np.median(np.diff(epochs))) if len(epochs) > 1 else 1.0
    return smooth(values, max(1, round(window / step)))


def settled_epoch(epochs: np.ndarray, values: np.ndarray, window: int, mode: str = "min") -> tuple[int, int]:
    """(epoch where the smoothed curve is best, last epoch); epochs are 0-based, reported 1-based."""
    smoothed = smoothed_curve(epochs, values, window)
    best = np.argmin(smoothed) if mode == "min" else np.argmax(smoothed)
    return int(epochs[int(best)]) + 1, int(epochs[-1]) + 1


def late_change(epochs: np.ndarray, values: np.ndarray, window: int, share: float = 1 / 3) -> tuple[int, float, float]:
    """(first epoch of the last `share` of training, smoothed value there, smoothed value at the last epoch):
    how far the curve still moved late in training, the evidence for or against a plateau."""
    smoothed = smoothed_curve(epochs, values, window)
    start = min(len(epochs) - 1, int(round(len(epochs) * (1 - share))))
    return int(epochs[start]) + 1, float(smoothed[start]), float(smoothed[-1])
