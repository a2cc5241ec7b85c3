"""Figures built from run artifacts (never from models)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: Path, title: str | None = None, tight: bool = True) -> None:
    """Title, layout, and the PNG (150 dpi), creating its folder."""
    if title:
        fig.suptitle(title, fontsize=9)
    if tight:
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def panel_grid(n: int, width: float, height: float, max_cols: int = 3):
    """A figure of n panels wrapped to at most max_cols per row; the unused cells are hidden."""
    cols = min(n, max_cols)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = axes.ravel().tolist()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def class_legend(fig, labels: np.ndarray, cmap) -> None:
    """One legend entry per class (a coloured dot and the class), under the panels."""
    classes = np.unique(labels)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=cmap(int(c)), markersize=5) for c in classes]
    fig.legend(handles, [str(c) for c in classes], title="class", loc="lower center", ncol=min(len(classes), 10),
               fontsize=7, title_fontsize=7, frameon=False)


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
    save(fig, path)


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
    fig, axes = panel_grid(len(panels), 3.2, 3.6)
    for ax, (label, npz) in zip(axes, panels):
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
    save(fig, path, title)


def latent_scatter(panels: list[tuple[str, Path]], path: Path, title: str) -> None:
    """Suzuki et al. 2016 Figure 3: 2-d latents of the test set coloured by label, one panel per model."""
    fig, axes = panel_grid(len(panels), 3.6, 3.6)
    labels = []
    for ax, (label, npz) in zip(axes, panels):
        d = np.load(npz)
        ax.scatter(d["z"][:, 0], d["z"][:, 1], c=d["label"], cmap="tab10", vmin=-0.5, vmax=9.5, s=4)
        ax.set_title(label, fontsize=8)
        ax.tick_params(labelsize=6)
        labels.append(d["label"])
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    class_legend(fig, np.concatenate(labels), plt.get_cmap("tab10"))
    save(fig, path, title, tight=False)


def _attribute_label(edit: str) -> str:
    return "Not " + edit[1:] if edit.startswith("-") else edit


def _rgb_mosaic(grid: np.ndarray) -> np.ndarray:
    """(rows, cols, 3, h, w) pixels in [0, 1] -> one (H, W, 3) image with white 1-pixel separators."""
    rows, cols = grid.shape[:2]
    images = grid.reshape(rows * cols, *grid.shape[2:]).transpose(0, 2, 3, 1)
    return np.nan_to_num(_mosaic(images, rows, cols), nan=1.0)


def faces_from_attributes(panels: list[tuple[str, Path]], path: Path, title: str) -> None:
    """Suzuki et al. 2016 Figure 4: (a) per attribute setting (columns: Base, then Base with one
    attribute set to +-2), the average face and random faces (one eps per row); (b) draws of q(z|w)
    per setting on the first two PCA axes of all draws (sklearn.decomposition.PCA)."""
    from sklearn.decomposition import PCA

    label, npz = panels[0]
    d = np.load(npz)
    columns = [str(c) for c in d["column"]]
    grid = np.concatenate([d["average"][None], d["random"]], 0)                      # (1 + R, C, 3, h, w)
    h, w = grid.shape[-2:]
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(2.6 + 0.9 * len(columns) * 2, 0.9 * len(grid) + 1.2),
                                     gridspec_kw={"width_ratios": [1.3, 1]})
    ax_a.imshow(_rgb_mosaic(grid), interpolation="nearest")
    ax_a.set_xticks([(i + 0.5) * (w + 1) for i in range(len(columns))], [_attribute_label(c) for c in columns],
                    fontsize=7, rotation=30)
    ax_a.set_yticks([(r + 0.5) * (h + 1) for r in range(len(grid))], ["average"] + ["random"] * (len(grid) - 1),
                    fontsize=7)
    ax_a.set_title(f"(a) {label}: average and random faces (ζ = {float(d['zeta']):g})", fontsize=8)
    z = d["z"]                                                                        # (C, n, d)
    xy = PCA(n_components=2).fit_transform(z.reshape(-1, z.shape[-1])).reshape(*z.shape[:2], 2)
    for c, name in enumerate(columns):
        ax_b.scatter(xy[c, :, 0], xy[c, :, 1], s=3, label=_attribute_label(name))
    ax_b.legend(fontsize=6, markerscale=3)
    ax_b.set_title("(b) draws of q(z|w), PCA", fontsize=8)
    ax_b.tick_params(labelsize=6)
    save(fig, path, title)


def attribute_edits(panels: list[tuple[str, Path]], path: Path, title: str) -> None:
    """Suzuki et al. 2016 Figure 5: per test face (rows), the input, the average face of the
    attributes generated from it, its reconstruction, and x + x'_mean - x_mean per attribute edit;
    the row label gives the generated values of the edited attributes."""
    label, npz = panels[0]
    d = np.load(npz)
    edits = [str(c) for c in d["column"]]
    grid = np.concatenate([d["input"][:, None], d["average"][:, None], d["reconstruction"][:, None], d["edited"]], 1)
    h, w = grid.shape[-2:]
    names = [str(n) for n in d["attribute_names"]]
    shown = list(dict.fromkeys(e.lstrip("-") for e in edits))
    row_labels = [", ".join(f"{n}: {d['generated_attributes'][i, names.index(n)]:.2f}" for n in shown[:3])
                  for i in range(len(grid))]
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * grid.shape[1] + 2.2, 0.8 * len(grid) + 1.0))
    ax.imshow(_rgb_mosaic(grid), interpolation="nearest")
    columns = ["input", "average face", "reconstruction"] + [_attribute_label(e) for e in edits]
    ax.set_xticks([(i + 0.5) * (w + 1) for i in range(len(columns))], columns, fontsize=7, rotation=30)
    ax.set_yticks([(r + 0.5) * (h + 1) for r in range(len(grid))], row_labels, fontsize=6)
    ax.set_title(f"{label}: generated attributes and attribute edits", fontsize=8)
    save(fig, path, title)


def collapse_curves(panels: list[tuple[str, Path]], path: Path, title: str) -> None:
    """Mancisidor et al. Figure 2 (mmrepro/eval/collapse.py): three KL panels, KL[(z|x_O) || N(0,1)],
    KL[(z|x_M) || N(0,1)], KL[(z|x_O) || (z|x_M)], each the share of latent dimensions whose KL is
    <= eps for 99% of test points over eps in [0, 6], and a fourth with the same share of generated
    dimensions whose decoder variance is <= eps. Every model that defines a panel's quantity is drawn
    in it, one colour per model throughout; a panel no model defines says so."""
    from mmrepro.eval.collapse import KL_GRID, PANELS, VARIANCE_GRID, collapse_curve

    data = [(label, np.load(npz), f"C{i}") for i, (label, npz) in enumerate(panels)]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.0 * len(PANELS), 3.6), squeeze=False)
    for ax, (key, name) in zip(axes[0], PANELS.items()):
        grid = VARIANCE_GRID if key == "decoder_var" else KL_GRID
        drawn = [(label, d, colour) for label, d, colour in data if key in d]
        for label, d, colour in drawn:
            ax.plot(grid, collapse_curve(d[key], grid), label=label, color=colour)
        what = "generated dimensions" if key == "decoder_var" else "latent dimensions"
        ax.set(xlabel="ε" if key == "decoder_var" else "ε (nats)", ylabel=f"share of {what}", ylim=(-0.02, 1.02),
               title=f"{name} ≤ ε for 99% of test points")
        ax.title.set_fontsize(8)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no model here defines it", ha="center", va="center", transform=ax.transAxes, fontsize=8)
    save(fig, path, title)


def latent_tsne(panels: list[tuple[str, Path]], path: Path, title: str) -> None:
    """2-d t-SNE (sklearn.manifold.TSNE, seed 0) of each model's saved test latents, coloured by
    label (multi-label data: by the first positive class)."""
    from sklearn.manifold import TSNE

    fig, axes = panel_grid(len(panels), 3.6, 3.6)
    labels = []
    for ax, (label, npz) in zip(axes, panels):
        d = np.load(npz)
        z, y = d["z"], d["label"]
        y = y.argmax(1) if y.ndim > 1 else y
        xy = TSNE(n_components=2, init="pca", random_state=0, perplexity=min(30.0, (len(z) - 1) / 3)).fit_transform(z)
        cmap = plt.get_cmap("tab10") if y.max() < 10 else plt.get_cmap("nipy_spectral", int(y.max()) + 1)
        ax.scatter(xy[:, 0], xy[:, 1], c=cmap(y), s=3)
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        labels.append(y)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    y = np.concatenate(labels)
    class_legend(fig, np.arange(int(y.max()) + 1) if y.max() >= 10 else np.unique(y), cmap)
    save(fig, path, title, tight=False)


def learning_curves(series: list[tuple[str, list[dict]]], metric: str, path: Path, title: str,
                    ylabel: str | None = None) -> None:
    """Per row, the per-epoch validation `metric` of its runs (the records' `curves`): the mean over
    seeds as a line, the seeds' range as a band. The y range fits the last four fifths of training
    (the first epochs may start far higher)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    late = []
    for i, (label, records) in enumerate(series):
        n = min(len(r["curves"][metric]) for r in records)
        values = np.array([r["curves"][metric][:n] for r in records], dtype=float)
        epochs = np.asarray(records[0]["curves"]["epoch"][:n]) + 1
        seeds = f"{len(records)} seed{'s' if len(records) > 1 else ''}"
        ax.plot(epochs, values.mean(0), color=f"C{i}", lw=1.2, label=f"{label} (mean of {seeds})")
        ax.fill_between(epochs, values.min(0), values.max(0), color=f"C{i}", alpha=0.15, lw=0)
        late += [values.min(0)[n // 5:].min(), values.max(0)[n // 5:].max()]
    pad = 0.1 * (max(late) - min(late)) or 0.1 * abs(max(late)) or 1.0
    ax.set(xlabel="epoch", ylabel=ylabel or metric, ylim=(min(late) - pad, max(late) + pad))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save(fig, path, title)


def retrieved_pairs(panels: list[tuple[str, Path]], path: Path, title: str, query: str = "image+text") -> None:
    """Sohn et al. 2014 Figure 3 from retrieval_examples.npz (eval/multilabel_probe.py): per query, the
    query pair then its best database matches; each pair is its tags (text) above its image features
    wrapped into a strip (the distribution has features, not pixels)."""
    import textwrap

    _, npz = panels[0]
    d = np.load(npz)
    where = {int(r): i for i, r in enumerate(d["rows"])}
    queries, matches = d["query_rows"], d[f"matches/{query}"]
    n_cols = 1 + matches.shape[1]
    width = 1
    while width * width < d["image"].shape[1]:
        width += 1
    strip = lambda row: np.pad(d["image"][where[int(row)]], (0, width * width - d["image"].shape[1]),  # noqa: E731
                               constant_values=np.nan).reshape(width, width)
    fig, axes = plt.subplots(len(queries), n_cols, figsize=(2.0 * n_cols + 0.6, 2.4 * len(queries)), squeeze=False)
    for r, (q, found) in enumerate(zip(queries, matches)):
        for c, row in enumerate([q, *found]):
            ax = axes[r, c]
            shown = ax.imshow(strip(row), cmap="coolwarm", vmin=-3, vmax=3, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            tags = str(d["tags"][where[int(row)]]) or "(no tags)"
            ax.set_title(textwrap.fill(textwrap.shorten(tags, 75, placeholder=" ..."), 28), fontsize=6)
            if c == 0:
                ax.set_ylabel(f"query {r + 1}", fontsize=7)
                for side in ax.spines.values():
                    side.set_linewidth(2.5)
        axes[r, 0].set_xlabel("query", fontsize=7)
    for c in range(1, n_cols):
        axes[-1, c].set_xlabel(f"match {c}", fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.colorbar(shown, ax=axes, shrink=0.5, label="image feature (standardised)")
    save(fig, path, title, tight=False)
