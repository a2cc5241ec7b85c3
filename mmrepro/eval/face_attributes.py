"""Suzuki et al. 2016, Figures 4 and 5 (CelebA, JMVAE): faces generated from attribute vectors and
attribute edits of real faces, saved as run artifacts that mmrepro/tables/figures.py draws.

Figure 4 (its caption). Base = 40 attributes drawn uniformly from {-1, 1} (seeded); each further
column sets one attribute of Base to +value ("Smiling") or -value ("-Male", the paper's "Not Male");
value = 2 in the paper. Average face: the mean of p(x | z_mean), z_mean the mean of q(z | w). Random
faces: z = z_mean + sigma * eps, sigma the std of q(z | w), eps ~ N(0, zeta I) with zeta = 0.6 read as
a variance (the paper writes N(0, zeta)), one eps per row shared by all columns. (b): `n_pca`
draws from q(z | w) per column, projected on two PCA axes when the figure is drawn.
Figure 5 (its caption), on test faces (the paper uses portraits of the Mona Lisa and Mozart):
w_gen = the mean of p(w | z), z the mean of q(z | x); x_mean = the average face of w_gen; per edit,
w' = w_gen with that attribute set to +-value (the paper: "change the values"; we take Figure 4's
+-2), x'_mean its average face, and the edited face x' = x + x'_mean - x_mean. Also the
reconstruction, the mean of p(x | z) with z the mean of q(z | x).
Pixels go back to [0, 1] with the datamodule's pixel_mean / pixel_std (CelebA standardises them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mmrepro.data.celeba import ATTRIBUTES
from mmrepro.errors import ConfigError, check_range


def parse_edit(edit: str) -> tuple[str, float]:
    """'Smiling' -> ('Smiling', +1); '-Male' -> ('Male', -1) (the paper's 'Not Male')."""
    name, sign = (edit[1:], -1.0) if edit.startswith("-") else (edit, 1.0)
    if name not in ATTRIBUTES:
        raise ConfigError("eval.faces", f"unknown CelebA attribute {edit!r}; allowed: {', '.join(ATTRIBUTES)} "
                          "(prefix '-' for 'Not')")
    return name, sign


class FaceFigures:
    def __init__(self, generate=("-Male", "Bald", "Smiling"),
                 edit=("-Male", "Eyeglasses", "-Young", "Smiling", "Mouth_Slightly_Open"),
                 value: float = 2.0, zeta: float = 0.6, n_random: int = 5, n_faces: int = 4, n_pca: int = 300,
                 seed: int = 0):
        self.generate = [parse_edit(e) for e in generate]
        self.edit = [parse_edit(e) for e in edit]
        self.labels = {"generate": ["Base"] + list(generate), "edit": list(edit)}
        self.value = check_range("eval.faces.value", value, 0, lo_inclusive=False)
        self.zeta = check_range("eval.faces.zeta", zeta, 0)
        self.n_random = check_range("eval.faces.n_random", n_random, 0, integer=True)
        self.n_faces = check_range("eval.faces.n_faces", n_faces, 1, integer=True)
        self.n_pca = check_range("eval.faces.n_pca", n_pca, 2, integer=True)
        self.seed = seed

    @staticmethod
    def check(model) -> None:
        """Both figures need q(z|w), q(z|x) and a decoder of w: JMVAE."""
        if not ({"log_p(x)/single", "log_p(x|w)/single"} <= set(model.BOUNDS) and model.w in model.decoders):
            raise ConfigError("eval.faces", f"Figures 4-5 need q(z|w), q(z|x) and p(w|z), which "
                              f"{type(model).__name__} lacks; allowed models: jmvae (set eval.faces: null otherwise)")

    def set_attributes(self, w: torch.Tensor, edits: list[tuple[str, float]], names: list[str]) -> torch.Tensor:
        """(E, 40) copies of each row of w (B, 40) -> (B, E, 40) with edit e applied to copy e."""
        out = w.unsqueeze(1).repeat(1, len(edits), 1)
        for e, (name, sign) in enumerate(edits):
            out[:, e, names.index(name)] = sign * self.value
        return out

    def average_face(self, model, w: torch.Tensor, template: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean face, z_mean, z_std) from attribute rows w (N, 40) through q(z|w)."""
        mu, logvar = model.proposal({**template, model.w: w}, "w")
        return self.face(model, mu), mu, (0.5 * logvar).exp()

    @staticmethod
    def face(model, z: torch.Tensor) -> torch.Tensor:
        return model.mean(model.x, model.decode(model.x, z, {}))

    @torch.no_grad()
    def __call__(self, model, datamodule, split: str, run_dir: Path) -> None:
        names = list(getattr(datamodule, "attribute_names", []))
        missing = [n for n, _ in self.generate + self.edit if n not in names]
        if missing:
            raise ConfigError("eval.faces", f"the dataset has no attributes {missing}; Figures 4-5 need CelebA")
        mean = torch.as_tensor(datamodule.pixel_mean, device=model.device)
        std = torch.as_tensor(datamodule.pixel_std, device=model.device)
        to_pixels = lambda x: (x * std + mean).clamp(0, 1).float().cpu().numpy()  # noqa: E731
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        rows = datamodule.rows(split, 0, self.n_faces)
        x = rows[model.x]

        # Figure 4: Base and its edits, average faces, random faces, q(z|w) draws for the PCA panel.
        base = (torch.randint(0, 2, (1, len(names)), generator=g) * 2 - 1).to(x)
        w = torch.cat([base, self.set_attributes(base, self.generate, names)[0]])           # (C, 40)
        avg, mu, sd = self.average_face(model, w, {model.x: x[:1].expand(len(w), *x.shape[1:])})  # x: shape only
        eps = torch.randn(self.n_random, 1, mu.shape[1], generator=g).to(mu) * self.zeta ** 0.5
        random = self.face(model, (mu + sd * eps).reshape(-1, mu.shape[1])).reshape(self.n_random, len(w), *x.shape[1:])
        draws = mu + sd * torch.randn(self.n_pca, *mu.shape, generator=g).to(mu)           # (n_pca, C, d)
        np.savez(run_dir / "faces_from_attributes.npz", average=to_pixels(avg), random=to_pixels(random),
                 z=draws.transpose(0, 1).float().cpu().numpy(), column=np.array(self.labels["generate"]),
                 attributes=w.float().cpu().numpy(), value=self.value, zeta=self.zeta)

        # Figure 5: generated attributes of real faces, their average face, and attribute edits.
        z_x, _ = model.proposal(rows, "x")
        recon = self.face(model, z_x)
        w_gen = model.mean(model.w, model.decode(model.w, z_x, rows))                       # (B, 40)
        x_mean, _, _ = self.average_face(model, w_gen, rows)
        edited_w = self.set_attributes(w_gen, self.edit, names)                             # (B, E, 40)
        b, e = edited_w.shape[:2]
        x_edit_mean, _, _ = self.average_face(model, edited_w.reshape(b * e, -1),
                                              {model.x: x.repeat_interleave(e, 0)})
        edited = x.unsqueeze(1) + x_edit_mean.reshape(b, e, *x.shape[1:]) - x_mean.unsqueeze(1)
        np.savez(run_dir / "attribute_edits.npz", input=to_pixels(x), reconstruction=to_pixels(recon),
                 average=to_pixels(x_mean), edited=to_pixels(edited), column=np.array(self.labels["edit"]),
                 generated_attributes=w_gen.float().cpu().numpy(), attribute_names=np.array(names))
