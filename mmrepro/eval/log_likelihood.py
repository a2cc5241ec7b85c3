"""Importance-weighted test log-likelihoods (Suzuki et al. 2016, Sec. 4.3.1 and Appendix B;
Burda et al. 2015), for every bound the model declares in its BOUNDS (models/variational.py):

  L_k = mean over test points of log (1/k) sum_i p(target, z_i [| w]) / q(z_i | proposal),  z_i ~ q

minus an N_w-sample estimate of log p(w) for the conditional bounds of joint models (Eq. 8, 9).
Bounds sharing a proposal share its k samples (one decoder pass per modality). Points are taken in
chunks of about `rows_per_chunk` // k so that the k x points decoder batch is one large matmul; the
k samples are reduced with logsumexp (never a Python loop over samples).

Also saves, for the figures: latents.npz (Figure 3: the representation of each test point, when the
latent is 2-d), generated.npz (Figure 7: x generated from each one-hot w, for models that can), and
with `faces` set (CelebA, JMVAE) faces_from_attributes.npz and attribute_edits.npz (Figures 4, 5;
mmrepro/eval/face_attributes.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from mmrepro.errors import ConfigError, check_range
from mmrepro.eval.face_attributes import FaceFigures


def log_mean_exp(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return torch.logsumexp(log_w, dim) - math.log(log_w.shape[dim])


class IWLogLikelihood:
    def __init__(self, k: int = 1000, n_w: int = 5000, split: str = "test", rows_per_chunk: int = 10000,
                 max_points: int | None = None, n_generated: int = 10, faces: dict | None = None):
        self.k = check_range("k", k, 1, integer=True)
        self.n_w = check_range("n_w", n_w, 1, integer=True)
        if split not in ("val", "test"):
            raise ConfigError("split", f"unknown value {split!r}; allowed: val, test")
        self.split = split
        self.rows_per_chunk = check_range("rows_per_chunk", rows_per_chunk, 1, integer=True)
        self.max_points = None if max_points is None else check_range("max_points", max_points, 1, integer=True)
        self.n_generated = check_range("n_generated", n_generated, 0, integer=True)
        self.faces = FaceFigures(**faces) if faces else None

    def check(self, model, modality_names: list[str]) -> None:
        if self.faces:
            self.faces.check(model)

    @torch.no_grad()
    def estimate(self, model, batch: dict) -> dict[str, torch.Tensor]:
        """Per-example IW estimates of each of the model's bounds for one chunk of points, (B,)."""
        names = {"x": [model.x], "w": [model.w], "xw": [model.x, model.w]}
        out, log_pw = {}, None
        for proposal in dict.fromkeys(p for p, _, _ in model.BOUNDS.values()):
            terms = model.iw_terms(batch, proposal, self.k)
            for bound, (p, target, minus_log_pw) in model.BOUNDS.items():
                if p != proposal:
                    continue
                log_w = terms["log_prior"] - terms["log_q"] + sum(terms[n] for n in names[target])
                out[bound] = log_mean_exp(log_w, 0)
                if minus_log_pw:
                    log_pw = model.log_p_w(batch, self.n_w) if log_pw is None else log_pw
                    out[bound] = out[bound] - log_pw
        return out

    def __call__(self, model, datamodule, run_dir: Path) -> dict:
        model.eval()
        data = datamodule.split(self.split)
        n = len(next(iter(data.values())))
        n = min(n, self.max_points) if self.max_points else n
        chunk = max(1, self.rows_per_chunk // self.k)
        sums: dict[str, float] = {}
        for i in range(0, n, chunk):
            rows = datamodule.rows(self.split, i, min(i + chunk, n))
            for bound, values in self.estimate(model, rows).items():
                sums[bound] = sums.get(bound, 0.0) + float(values.double().sum())
        metrics = {f"{self.split}/{b}": s / n for b, s in sums.items()}
        metrics.update({"eval/k": self.k, "eval/n_w": self.n_w, "eval/points": n})
        self.save_figure_data(model, datamodule, run_dir)
        return metrics

    @torch.no_grad()
    def save_figure_data(self, model, datamodule, run_dir: Path) -> None:
        rows = datamodule.rows(self.split, 0, len(next(iter(datamodule.split(self.split).values()))))
        if model.latent_dim == 2 and "label" in rows:
            np.savez(run_dir / "latents.npz", z=model.representation(rows).float().cpu().numpy(),
                     label=rows["label"].cpu().numpy())
        w = datamodule.modalities[1] if len(datamodule.modalities) > 1 else None
        if self.n_generated and w is not None and w.likelihood == "categorical" and len(w.shape) == 1:
            classes = torch.arange(w.shape[0], device=model.device).repeat_interleave(self.n_generated)
            onehot = torch.nn.functional.one_hot(classes, w.shape[0]).to(rows[model.x].dtype)
            batch = {model.w: onehot, model.x: rows[model.x][:1].expand(len(classes), *rows[model.x].shape[1:])}
            x = model.generate(batch)
            if x is not None:
                np.savez(run_dir / "generated.npz", x=x.float().cpu().numpy(), label=classes.cpu().numpy())
        if self.faces:
            self.faces(model, datamodule, self.split, run_dir)
