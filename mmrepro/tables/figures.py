"""Figures built from run artifacts (never from models)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _image(left: np.ndarray, right: np.ndarray, shapes) -> np.ndarray:
    return np.concatenate([left.reshape(shapes[0]), right.reshape(shapes[1])], axis=1)


def inferred_halves_grid(panels: list[tuple[str, Path]], path: Path, title: str) -> None:
    """Sohn et al. 2014 Figure 2 layout, for each query (given left, given right): rows of ground
    truth, the observed half, and each model's completion; columns are test examples."""
    data = [(label, np.load(npz)) for label, npz in panels]
    first = data[0][1]
    names = ["left", "right"]
    shapes = [tuple(first[f"shape/{n}"]) for n in names]
    truth = [_image(first[f"truth/{names[0]}"][i], first[f"truth/{names[1]}"][i], shapes)
             for i in range(len(first["label"]))]
    rows, labels = [], []
    for observed, missing in (("left", "right"), ("right", "left")):
        rows.append(truth)
        labels.append("ground truth")
        blank = 0.5
        given = []
        for i in range(len(truth)):
            parts = {observed: first[f"truth/{observed}"][i], missing: np.full(first[f"truth/{missing}"][i].shape, blank)}
            given.append(_image(parts["left"], parts["right"], shapes))
        rows.append(given)
        labels.append(f"given {observed}")
        for label, d in data:
            key = f"inferred_from/{observed}/{missing}"
            done = []
            for i in range(len(truth)):
                parts = {observed: d[f"truth/{observed}"][i], missing: d[key][i]}
                done.append(_image(parts["left"], parts["right"], shapes))
            rows.append(done)
            labels.append(label)
    h, w = truth[0].shape
    pad = 1
    mosaic = np.full((len(rows) * (h + pad), len(truth) * (w + pad)), np.nan)  # nan: separators
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            mosaic[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img
    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * len(truth), 0.5 * len(rows) + 0.8))
    cmap = plt.get_cmap("gray_r").copy()
    cmap.set_bad("#9ecae1")
    ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([(r + 0.5) * (h + pad) for r in range(len(rows))], labels, fontsize=7)
    ax.set_xticks([])
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _mosaic(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows*cols, h, w[, c]) images -> one array with 1-pixel NaN separators, row-major."""
    h, w = images.shape[1:3]
    out = np.full((rows * (h + 1), cols * (w + 1), *images.shape[3:]), np.nan)
    for i, img in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = img
    return out


def conditional_generation(panels: list[tuple[str, Path]], path: Path, title: str) -> None:
    """Suzuki et al. 2016 Figure 7: per model, x generated from each label (columns) n times (rows)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for ax, (label, npz) in zip(axes[0], panels):
        d = np.load(npz)
        x, y = d["x"], d["label"]
        classes = np.unique(y)
        per = min(int((y == c).sum()) for c in classes)
        grid = np.stack([x[y == c][:per] for c in classes], 1).reshape(per * len(classes), *x.shape[1:])
        side = int(round(np.sqrt(grid[0].size)))
        ax.imshow(_mosaic(grid.reshape(len(grid), side, side), per, len(classes)), cmap="gray_r", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_xticks([(i + 0.5) * (side + 1) for i in range(len(classes))], [str(c) for c in classes], fontsize=7)
        ax.set_yticks([])
        ax.set_title(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def latent_scatter(panels: list[tuple[str, Path]], path: Path, title: str) -> None:
    """Suzuki et al. 2016 Figure 3: 2-d latents of the test set coloured by label, one panel per model."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (label, npz) in zip(axes[0], panels):
        d = np.load(npz)
        points = ax.scatter(d["z"][:, 0], d["z"][:, 1], c=d["label"], cmap="tab10", vmin=-0.5, vmax=9.5, s=4)
        ax.set_title(label, fontsize=8)
        ax.tick_params(labelsize=6)
    fig.colorbar(points, ax=axes[0].tolist(), ticks=range(10), shrink=0.8)
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
