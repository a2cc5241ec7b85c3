"""Multi-label probe and retrieval on joint features (Sohn et al. 2014, Tables 2 and 3 and the
retrieval study, MIR-Flickr protocol).

Features are the model's joint representation given a query's observed modalities (the missing one
inferred by the model's recurrent passes). As in the authors' flickr_both_l3.m / run_mclr.m:
- one-vs-rest logistic regression (scikit-learn, l2), C chosen on the validation split by mAP with
  multimodal features, refitted on train+validation multimodal features, applied to the test
  features of every query: `test/mAP/<query>` (Table 2), mAP = the mean over classes of the average
  precision of the classifier's scores (classes with no positive example are left out);
- Table 3: the classifier fitted on train features at the chosen C, applied to validation features
  inferred with T' recurrent passes for each T' in `val_iters`: `val/mAP/<query>/T<T'>`;
- retrieval: the first `retrieval.database` test pairs (multimodal features) are the database, the
  next `retrieval.queries` test pairs the queries; relevance score = cosine similarity, a pair is
  relevant when it shares a label with the query; mAP over the queries that have a relevant pair:
  `retrieval/mAP/<query>`. A few queries' top matches go to retrieval_examples.npz (Figure 3).
Every mAP is in percent (the paper writes fractions: 0.686 is 68.6 here).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.multiclass import OneVsRestClassifier

from mmrepro.errors import ConfigError, check_range


def mean_average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Macro mAP (fraction) over the classes (columns) that have a positive example."""
    present = y.sum(0) > 0
    if not present.any():
        raise ValueError("no class has a positive example")
    return float(average_precision_score(y[:, present], scores[:, present], average="macro"))


def ranking(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Database rows in order of cosine similarity to each query row, most similar first."""
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    d = database / np.maximum(np.linalg.norm(database, axis=1, keepdims=True), 1e-12)
    return np.argsort(-(q @ d.T), axis=1, kind="stable")


def retrieval_average_precision(query: np.ndarray, query_labels: np.ndarray, database: np.ndarray,
                                database_labels: np.ndarray) -> np.ndarray:
    """Average precision of each query's ranking of the database by cosine similarity; a database
    pair is relevant when it shares a label with the query. NaN for a query with no relevant pair."""
    relevant = (query_labels @ database_labels.T) > 0
    order = ranking(query, database)
    hits = np.take_along_axis(relevant, order, 1).astype(np.float64)
    precision = np.cumsum(hits, 1) / np.arange(1, hits.shape[1] + 1)
    n_relevant = hits.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, (precision * hits).sum(1) / n_relevant, np.nan)


class MultiLabelQueryProbe:
    def __init__(self, C_grid=(0.01, 0.1, 1.0, 10.0), queries=("image+text", "image"), val_iters=(0, 1, 2, 3, 5, 10),
                 retrieval: dict | None = None, max_iter: int = 1000, chunk_size: int = 1024,
                 n_figure_queries: int = 4, n_figure_matches: int = 4):
        self.C_grid = [check_range("C_grid[]", float(c), 0, lo_inclusive=False) for c in C_grid]
        if not self.C_grid:
            raise ConfigError("C_grid", "needs at least one value")
        self.queries = [str(q) for q in queries]
        self.val_iters = [check_range("val_iters[]", t, 0, integer=True) for t in val_iters]
        retrieval = dict(retrieval or {"database": 5000, "queries": 1000})
        self.n_database = check_range("retrieval.database", retrieval["database"], 1, integer=True)
        self.n_queries = check_range("retrieval.queries", retrieval["queries"], 1, integer=True)
        self.max_iter = check_range("max_iter", max_iter, 1, integer=True)
        self.chunk_size = check_range("chunk_size", chunk_size, 1, integer=True)
        self.n_figure_queries = check_range("n_figure_queries", n_figure_queries, 0, integer=True)
        self.n_figure_matches = check_range("n_figure_matches", n_figure_matches, 1, integer=True)
        self.warnings: list[str] = []

    def check(self, model, modality_names: list[str]) -> None:
        """Queries are '+'-joined modality names; T' needs a model with recurrent inference and at
        most the T it was finetuned with."""
        allowed = ["+".join(modality_names)] + list(modality_names)
        for q in self.queries:
            parts = q.split("+")
            if any(p not in modality_names for p in parts) or len(set(parts)) != len(parts):
                raise ConfigError("eval.queries", f"unknown query {q!r}; allowed: {', '.join(allowed)}")
        if self.val_iters:
            if "iters" not in inspect.signature(model.infer).parameters:
                raise ConfigError("eval.val_iters", f"{type(model).__name__} has no recurrent inference to vary; "
                                  "allowed: eval.val_iters=[]")
            limit = getattr(model, "T", None)
            if limit is not None and max(self.val_iters) > limit:
                raise ConfigError("eval.val_iters", f"T' = {max(self.val_iters)} exceeds the T = {limit} the "
                                  "network was finetuned with (model.finetune.T)")

    def features(self, model, datamodule, split: str, observed: list[str], iters: int | None = None) -> np.ndarray:
        n = len(next(iter(datamodule.split(split).values())))
        kwargs = {} if iters is None else {"iters": iters}
        out = []
        for i in range(0, n, self.chunk_size):
            h, _ = model.infer(datamodule.rows(split, i, i + self.chunk_size), observed, **kwargs)
            out.append(h.float().cpu())
        return torch.cat(out).numpy()

    def classifier(self, C: float, x: np.ndarray, y: np.ndarray) -> OneVsRestClassifier:
        return OneVsRestClassifier(LogisticRegression(C=C, max_iter=self.max_iter)).fit(x, y)

    def __call__(self, model, datamodule, run_dir: Path) -> dict:
        names = [m.name for m in datamodule.modalities]
        self.check(model, names)
        key = datamodule.label.name
        model.eval()
        y = {s: datamodule.split(s)[key].cpu().numpy() for s in ("train", "val", "test")}
        n_test = len(y["test"])
        if self.n_database + self.n_queries > n_test:
            raise ConfigError("eval.retrieval", f"a database of {self.n_database} and {self.n_queries} queries need "
                              f"{self.n_database + self.n_queries} test pairs; the split has {n_test}")
        f_train = self.features(model, datamodule, "train", names)
        f_val = self.features(model, datamodule, "val", names)
        fitted = {C: self.classifier(C, f_train, y["train"]) for C in self.C_grid}
        val_map = {C: mean_average_precision(y["val"], fitted[C].decision_function(f_val)) for C in self.C_grid}
        best_C = max(self.C_grid, key=lambda c: (val_map[c], -c))
        metrics = {"l2/best_C": best_C, "val/mAP": 100 * val_map[best_C]}
        on_train = fitted[best_C]
        for T in self.val_iters:   # Table 3
            for q in self.queries:
                f = f_val if q.split("+") == names else self.features(model, datamodule, "val", q.split("+"), iters=T)
                metrics[f"val/mAP/{q}/T{T}"] = 100 * mean_average_precision(y["val"], on_train.decision_function(f))
        final = self.classifier(best_C, np.concatenate([f_train, f_val]), np.concatenate([y["train"], y["val"]]))
        test = {"+".join(names): self.features(model, datamodule, "test", names)}
        database = test["+".join(names)][: self.n_database]   # multimodal features of the first test pairs
        query_rows = slice(self.n_database, self.n_database + self.n_queries)
        examples = {}
        for q in self.queries:   # Table 2 and retrieval
            f_test = test[q] if q in test else self.features(model, datamodule, "test", q.split("+"))
            metrics[f"test/mAP/{q}"] = 100 * mean_average_precision(y["test"], final.decision_function(f_test))
            ap = retrieval_average_precision(f_test[query_rows], y["test"][query_rows], database,
                                             y["test"][: self.n_database])
            metrics[f"retrieval/mAP/{q}"] = 100 * float(np.nanmean(ap))
            metrics[f"retrieval/queries_without_relevant/{q}"] = int(np.isnan(ap).sum())
            examples[q] = ranking(f_test[query_rows][: self.n_figure_queries], database)[:, : self.n_figure_matches]
        metrics["retrieval/database"], metrics["retrieval/queries"] = self.n_database, self.n_queries
        self.save_examples(run_dir, datamodule, examples)
        return metrics

    def save_examples(self, run_dir: Path, datamodule, examples: dict[str, np.ndarray]) -> None:
        """retrieval_examples.npz for Figure 3: per query kind, the query rows (test rows) and their
        matches (test rows of the database); each shown row's tags (as words when the dataset has a
        vocabulary) and image features."""
        if self.n_figure_queries == 0:
            return
        query_rows = np.arange(self.n_database, self.n_database + min(self.n_figure_queries, self.n_queries))
        shown = np.unique(np.concatenate([query_rows] + [m.ravel() for m in examples.values()]))
        test = datamodule.resolve({k: t[torch.as_tensor(shown, device=t.device)]
                                   for k, t in datamodule.split("test").items()})
        words = datamodule.vocabulary() if hasattr(datamodule, "vocabulary") else None
        text = next(m.name for m in datamodule.modalities if m.likelihood == "bernoulli")   # the tags
        image = next(m.name for m in datamodule.modalities if m.name != text)
        tags = [", ".join((words[j] if words else f"#{j}") for j in np.flatnonzero(row))
                for row in test[text].cpu().numpy()]
        out = {"rows": shown, "query_rows": query_rows, "tags": np.array(tags, dtype=str),
               "image": test[image].float().cpu().numpy()}
        for q, m in examples.items():
            out[f"matches/{q}"] = m
        np.savez(run_dir / "retrieval_examples.npz", **out)
