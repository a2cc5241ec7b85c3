"""Cross-modal coherence (Shi et al. 2019; MoPoE's eval_metrics/coherence.py; CMMD journal Table 6
and H2): generate each modality m from a subset S of the others, classify the generated m with a
classifier trained on real m (mmrepro/eval/unimodal_classifiers.py), and count it coherent when the
predicted class is the pair's label. Coherence (%) = 100 x the coherent share of the split.

Generation: model.generate_from(batch, S), the decoder mean at one latent sample z ~ q(z | S) for
the baselines (MoPoE's protocol) and z ~ p(z | x_O) for CMMD (its `prior_z`), which generates only
from its observed set; a table therefore collects one CMMD run per conditioning subset.
Metrics: `<split>/coherence/<m>|<S>` (S joined by '+'), `<split>/coherence/mean` over the model's
cells, and `classifier/<m>/test_acc`, each classifier's accuracy on the real test data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mmrepro.errors import ConfigError, check_range
from mmrepro.eval.latent_subsets import modality_subsets
from mmrepro.eval.unimodal_classifiers import UnimodalClassifiers


class Coherence:
    def __init__(self, classifiers: dict | None = None, splits=("val", "test"), chunk_size: int = 2000):
        self.classifiers = UnimodalClassifiers(**(classifiers or {}))
        self.splits = list(splits)
        self.chunk_size = check_range("chunk_size", chunk_size, 1, integer=True)

    def check(self, model, modality_names: list[str]) -> None:
        label = getattr(model, "label", None)
        if label is None or label.likelihood != "categorical":
            raise ConfigError("dataset", "coherence needs one class label per example (categorical y); "
                              "datasets with one: digits_halves, mnist_svhn, mnist_svhn_text, mnist3, mnist_2view, xrmb")
        if not hasattr(model, "generate_from"):
            raise ConfigError("eval", f"{type(model).__name__} cannot generate one modality from others")

    @staticmethod
    def cells(model) -> list[tuple[str, list[str]]]:
        """(generated modality, conditioning subset) pairs the model can fill."""
        names = [m.name for m in model.modalities]
        if not hasattr(model, "infer"):
            return [(m, [n for n in names if n in model.observed]) for m in model.missing]
        return [(m, s) for s in modality_subsets(names, proper=True) for m in names if m not in s]

    @torch.no_grad()
    def __call__(self, model, datamodule, run_dir: Path) -> dict:
        model.eval()
        classifiers = self.classifiers.load(datamodule)
        metrics = {f"classifier/{m}/test_acc": acc for m, (_, acc) in classifiers.items()}
        cells = self.cells(model)
        for split in self.splits:
            if split not in datamodule.split_names():
                continue
            right = {cell_key(m, s): 0 for m, s in cells}
            n = len(datamodule.split(split)[model.label.name])
            for i in range(0, n, self.chunk_size):
                rows = datamodule.rows(split, i, min(i + self.chunk_size, n))
                y = rows[model.label.name]
                for given in {tuple(s) for _, s in cells}:   # every generated modality is a cell
                    for m, x in model.generate_from(rows, list(given)).items():
                        right[cell_key(m, list(given))] += int((classifiers[m][0](x.float()).argmax(1) == y).sum())
            for key, count in right.items():
                metrics[f"{split}/coherence/{key}"] = 100.0 * count / n
            metrics[f"{split}/coherence/mean"] = float(np.mean([100.0 * c / n for c in right.values()]))
        return metrics


def cell_key(generated: str, given: list[str]) -> str:
    return f"{generated}|{'+'.join(given)}"
