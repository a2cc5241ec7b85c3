"""Linear-SVM probe of joint features under each query (Sohn et al. 2014, Table 1 protocol).

Features are the model's hidden probabilities given the observed modalities (missing ones are
inferred, Eq. 8). As in the authors' demo_mnist.m: sklearn LinearSVC's C is chosen on the
validation split with features of every modality, the SVM is refitted on train+validation, and
that one classifier is applied to test features inferred from each query. Reports the test error
in percent per query (metric `test_error/<query>`), saves each test point's predicted class per
query to test_predictions.npz (keys `label` and `predicted/<query>`, for the tables' paired tests),
and inferred halves of a few test examples (one per class) to figure_samples.npz for the figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.svm import LinearSVC

from mmrepro.errors import ConfigError, check_range


class SVMQueryProbe:
    def __init__(self, C_grid=(0.01, 0.1, 1.0, 10.0, 100.0, 1000.0), queries=("left+right", "left", "right"),
                 max_iter: int = 5000, n_figure_examples: int = 10, chunk_size: int = 4096):
        self.C_grid = [check_range("C_grid[]", float(c), 0, lo_inclusive=False) for c in C_grid]
        if not self.C_grid:
            raise ConfigError("C_grid", "needs at least one value")
        self.queries = [str(q) for q in queries]
        self.max_iter = check_range("max_iter", max_iter, 1, integer=True)
        self.n_figure_examples = check_range("n_figure_examples", n_figure_examples, 0, integer=True)
        self.chunk_size = chunk_size
        self.warnings: list[str] = []  # go to the run record and its tables

    def check(self, model, modality_names: list[str]) -> None:
        """Every query is a '+'-joined non-empty subset of the dataset's modality names."""
        allowed = ["+".join(modality_names)] + list(modality_names)
        for q in self.queries:
            parts = q.split("+")
            if not parts or any(p not in modality_names for p in parts) or len(set(parts)) != len(parts):
                raise ConfigError("eval.queries", f"unknown query {q!r}; allowed: {', '.join(allowed)}")

    def features(self, model, datamodule, split: str, observed: list[str]) -> tuple[np.ndarray, dict]:
        n = len(datamodule.split(split)["label"])
        hs, inferred = [], {}
        for i in range(0, n, self.chunk_size):
            h, missing = model.infer(datamodule.rows(split, i, i + self.chunk_size), observed)
            hs.append(h.float().cpu())
            for name, p in missing.items():
                inferred.setdefault(name, []).append(p.float().cpu())
        return torch.cat(hs).numpy(), {k: torch.cat(v).numpy() for k, v in inferred.items()}

    def __call__(self, model, datamodule, run_dir: Path) -> dict:
        names = [m.name for m in datamodule.modalities]
        self.check(model, names)
        model.eval()
        f_train, _ = self.features(model, datamodule, "train", names)
        f_val, _ = self.features(model, datamodule, "val", names)
        y_train, y_val = (datamodule.split(s)["label"].cpu().numpy() for s in ("train", "val"))
        val_error = {}
        for C in self.C_grid:
            svm = LinearSVC(C=C, max_iter=self.max_iter).fit(f_train, y_train)
            val_error[C] = float((svm.predict(f_val) != y_val).mean())
        best_C = min(self.C_grid, key=lambda c: (val_error[c], c))
        chance = 1 - np.bincount(y_val).max() / len(y_val)  # the majority-class guess's error
        if val_error[best_C] >= chance:
            self.warnings.append(f"validation error is at chance or worse for every C ({100 * val_error[best_C]:.1f}% "
                                 f">= {100 * chance:.1f}%): C was chosen on noise; check the splits")
            print(f"mmrepro: warning: {self.warnings[-1]}", file=sys.stderr)
        svm = LinearSVC(C=best_C, max_iter=self.max_iter).fit(np.concatenate([f_train, f_val]),
                                                               np.concatenate([y_train, y_val]))
        y_test = datamodule.split("test")["label"].cpu().numpy()
        metrics = {"svm/best_C": best_C, "svm/val_error_at_best_C": 100 * val_error[best_C]}
        figure = self._figure_rows(y_test)
        shown = datamodule.resolve({k: t[torch.as_tensor(figure, device=t.device)] for k, t in datamodule.split("test").items()})
        samples = {"label": y_test[figure]}
        predicted = {"label": y_test}
        for name in names:
            samples[f"truth/{name}"] = shown[name].cpu().numpy()
        for q in self.queries:
            observed = q.split("+")
            f_test, inferred = self.features(model, datamodule, "test", observed)
            predicted[f"predicted/{q}"] = svm.predict(f_test)
            metrics[f"test_error/{q}"] = 100 * float((predicted[f"predicted/{q}"] != y_test).mean())
            for name, p in inferred.items():
                samples[f"inferred_from/{q}/{name}"] = p[figure]
        shapes = {f"shape/{m.name}": np.array(m.shape) for m in datamodule.modalities}
        np.savez(run_dir / "figure_samples.npz", **samples, **shapes)
        np.savez(run_dir / "test_predictions.npz", **predicted)
        return metrics

    def _figure_rows(self, labels: np.ndarray) -> np.ndarray:
        """The first test example of each class, in class order, up to n_figure_examples."""
        rows = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
        return np.array(rows[: self.n_figure_examples], dtype=np.int64)
