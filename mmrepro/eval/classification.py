"""Downstream classification and generation of the missing modality (Mancisidor et al., Sec. 4):

- error (%): 100 x the share of points whose most probable class is not y (model.predict for models
  with a classifier; otherwise a logistic-regression probe on model.representation), on the
  validation split (to choose omega) and the test split; for multi-label data (MIR-Flickr) mAP (%),
  sklearn's average_precision_score macro-averaged over classes (`map_average`; the official code
  passes average='micro', the Srivastava & Salakhutdinov protocol the paper compares with is macro);
- rmse of the generated x_M, one protocol for every model (mmrepro/eval/generation.py: the decoder
  mean at the mean of the model's z given x_O): sqrt of the mean over all N x D entries of the
  squared error (the code's utils.rmse), per missing modality and over all of them; CMMD also
  `rmse_sampled` (decoded at one z ~ p(z|x_O), the paper's literal test-time generation);
- per speaker (XRMB, Table 6): error and rmse of each test speaker's frames;
- figure data: collapse.npz (mmrepro/eval/collapse.py: Figure 2's three KL panels per latent
  dimension of the test points, and decoder variances) and latents.npz (model.representation of up to `n_latents` test points
  with labels, for the t-SNE figure), test_predictions.npz (each test point's predicted class and
  label, for paired tests between models on the same points).
Points are processed in chunks of `chunk_size` rows (model in eval mode: dropout off).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from mmrepro.errors import ConfigError, check_choice, check_range
from mmrepro.eval.collapse import collapse_statistics
from mmrepro.eval.generation import can_generate, generate_missing


class Classification:
    def __init__(self, splits=("val", "test"), chunk_size: int = 2000, map_average: str = "macro",
                 n_latents: int = 2000, collapse_points: int = 5000, probe_points: int = 10000):
        self.splits = [check_choice("splits[]", s, ("train", "val", "test")) for s in splits]
        self.chunk_size = check_range("chunk_size", chunk_size, 1, integer=True)
        self.map_average = check_choice("map_average", map_average, ("macro", "micro"))
        self.n_latents = check_range("n_latents", n_latents, 0, integer=True)
        self.collapse_points = check_range("collapse_points", collapse_points, 0, integer=True)
        self.probe_points = check_range("probe_points", probe_points, 1, integer=True)

    def check(self, model, modality_names: list[str]) -> None:
        if getattr(model, "label", None) is None:
            raise ConfigError("dataset", "the dataset has no class labels; eval=classification needs them")
        if not hasattr(model, "predict") and not hasattr(model, "representation"):
            raise ConfigError("eval", f"{type(model).__name__} neither classifies nor has a representation")

    def fit_probe(self, model, datamodule) -> None:
        """Models without a classifier (VCCA, MVAE, ...): logistic regression (sklearn; one per class
        for multi-label data) on the representations of up to `probe_points` training examples."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        n = len(datamodule.split("train")[model.label.name])
        index = np.random.default_rng(0).permutation(n)[: self.probe_points]
        rows = datamodule.resolve({k: t[torch.as_tensor(index, device=t.device)]
                                   for k, t in datamodule.split("train").items()})
        with torch.no_grad():
            z = torch.cat([model.representation({k: v[i:i + self.chunk_size] for k, v in rows.items()})
                           for i in range(0, len(index), self.chunk_size)]).float().cpu().numpy()
        y = rows[model.label.name].cpu().numpy()
        lr = LogisticRegression(max_iter=1000)
        self.probe = (lr if model.label.likelihood == "categorical" else OneVsRestClassifier(lr)).fit(z, y)
        classes = np.arange(model.label.dim)
        self.probe_classes = getattr(self.probe, "classes_", classes)

    def predict(self, model, rows) -> torch.Tensor:
        if hasattr(model, "predict"):
            return model.predict(rows)
        p = self.probe.predict_proba(model.representation(rows).float().cpu().numpy())
        if model.label.likelihood == "categorical":   # classes absent from the probe's data get probability 0
            full = np.zeros((len(p), model.label.dim))
            full[:, self.probe_classes] = p
            p = full
        return torch.as_tensor(p)

    def outputs(self, model, datamodule, split: str, stop: int | None = None) -> dict[str, np.ndarray]:
        """Concatenated per-chunk outputs of the model over a split: probs, generated x_M, collapse stats."""
        n = len(datamodule.split(split)[model.label.name])
        n = min(n, stop) if stop else n
        parts: dict[str, list] = {}
        with torch.no_grad():
            for i in range(0, n, self.chunk_size):
                rows = datamodule.rows(split, i, min(i + self.chunk_size, n))
                out = {"probs": self.predict(model, rows), "y": rows[model.label.name]}
                if "speaker" in rows:
                    out["speaker"] = rows["speaker"]
                if can_generate(model):
                    for name, x in generate_missing(model, rows).items():
                        out[f"gen/{name}"] = x.flatten(1)
                        out[f"true/{name}"] = rows[name].flatten(1).to(x.dtype)
                if hasattr(model, "generate_sampled"):
                    for name, x in model.generate_sampled(rows).items():
                        out[f"sampled/{name}"] = x.flatten(1)
                for k, v in out.items():
                    parts.setdefault(k, []).append(v.float().cpu() if v.is_floating_point() else v.cpu())
        return {k: torch.cat(v).numpy() for k, v in parts.items()}

    def scores(self, model, out: dict[str, np.ndarray], prefix: str) -> dict[str, float]:
        metrics = {}
        if model.label.likelihood == "categorical":
            metrics[f"{prefix}/error"] = 100.0 * float(np.mean(out["probs"].argmax(1) != out["y"]))
            metrics[f"{prefix}/accuracy"] = 100.0 - metrics[f"{prefix}/error"]   # Tables 3-5 report accuracy
        else:
            present = out["y"].sum(0) > 0   # classes without a positive example have no AP
            metrics[f"{prefix}/mAP"] = 100.0 * float(average_precision_score(out["y"][:, present], out["probs"][:, present],
                                                                              average=self.map_average))
        generated = [k[4:] for k in out if k.startswith("gen/")]
        for name in generated:
            metrics[f"{prefix}/rmse/{name}"] = float(np.sqrt(np.mean((out[f"gen/{name}"] - out[f"true/{name}"]) ** 2)))
        if generated:
            sq = np.concatenate([(out[f"gen/{n}"] - out[f"true/{n}"]) ** 2 for n in generated], 1)
            metrics[f"{prefix}/rmse"] = float(np.sqrt(sq.mean()))
        sampled = [k[8:] for k in out if k.startswith("sampled/")]
        if sampled:
            sq = np.concatenate([(out[f"sampled/{n}"] - out[f"true/{n}"]) ** 2 for n in sampled], 1)
            metrics[f"{prefix}/rmse_sampled"] = float(np.sqrt(sq.mean()))
        return metrics

    def __call__(self, model, datamodule, run_dir: Path) -> dict:
        model.eval()
        metrics: dict = {}
        test = None
        if not hasattr(model, "predict"):
            self.fit_probe(model, datamodule)
        for split in self.splits:
            if split != "test" and split not in datamodule.split_names():
                continue  # e.g. mnist_label with split=code has no validation split
            out = self.outputs(model, datamodule, split)
            metrics.update(self.scores(model, out, split))
            test = out if split == "test" else test
            if split == "test" and "speaker" in out:
                for s in np.unique(out["speaker"]):
                    mine = {k: v[out["speaker"] == s] for k, v in out.items()}
                    metrics.update({k.replace("test/", f"test_speaker/{int(s)}/"): v
                                    for k, v in self.scores(model, mine, "test").items()})
        self.save_figure_data(model, datamodule, run_dir, test)
        return metrics

    @torch.no_grad()
    def save_figure_data(self, model, datamodule, run_dir: Path, test: dict[str, np.ndarray] | None = None) -> None:
        n = len(datamodule.split("test")[model.label.name])
        if test is not None and model.label.likelihood == "categorical":   # paired tests (McNemar) across models
            np.savez(run_dir / "test_predictions.npz", predicted=test["probs"].argmax(1), label=test["y"])
        if hasattr(model, "collapse_posteriors") and self.collapse_points:
            rows = [collapse_statistics(model, datamodule.rows("test", i, min(i + self.chunk_size, n, self.collapse_points)))
                    for i in range(0, min(n, self.collapse_points), self.chunk_size)]
            np.savez(run_dir / "collapse.npz", **{k: torch.cat([r[k] for r in rows]).float().cpu().numpy() for k in rows[0]})
        if hasattr(model, "representation") and self.n_latents:
            rows = datamodule.rows("test", 0, min(n, self.n_latents))
            np.savez(run_dir / "latents.npz", z=model.representation(rows).float().cpu().numpy(),
                     label=rows[model.label.name].cpu().numpy())
