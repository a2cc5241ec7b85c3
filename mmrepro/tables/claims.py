"""The paper's claims a table can test, and whether each holds in our runs (a spec's `claims`).

A claim compares row A with row B on a metric (each side may name its own metric), or, for a
trend, walks its `rows` in order. Relations:
- `better`: A is better than B;
- `not_worse`: A is at least as good as B;
- `close`: A and B do not differ;
- `trend`: each row is better than the one before it.
`higher: true` when a larger value is better (log-likelihoods); errors are lower-is-better.

The difference is tested at the 5% level (two-sided): with McNemar's exact test on the same test
points, pooled over the seeds both rows ran, where the claim names the runs' `predictions` key
(test_predictions.npz) and both rows saved it; otherwise with Welch's t-test on the per-seed values.
A trend tests its first row against its last and asks every step of the seed means to go the
claimed way. Verdicts: "holds", "does not hold" or "within seed noise" (a claimed difference the
test cannot tell from noise); `not_worse` and `close` hold when no difference is found.
"""

from __future__ import annotations

import math
import statistics

from scipy.stats import ttest_ind

from mmrepro.tables.paired import mcnemar

LEVEL = 0.05
HOLDS, FAILS, NOISE = "holds", "does not hold", "within seed noise"


def seed_values(records: list[dict], metric: str) -> list[float]:
    return [float(r["metrics"][metric]) for r in records
            if r.get("status") == "ok" and isinstance((r.get("metrics") or {}).get(metric), (int, float))
            and math.isfinite(r["metrics"][metric])]


def welch(a: list[float], b: list[float]) -> float:
    """Two-sided p of Welch's t-test; two constant samples differ (p = 0) unless they are equal."""
    if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:
        return 1.0 if statistics.mean(a) == statistics.mean(b) else 0.0
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def compare(records_a: list[dict], metric_a: str, records_b: list[dict], metric_b: str,
            predictions: str | None, names: tuple[str, str] = ("A", "B")) -> tuple[float, float, float, str] | str:
    """(mean A, mean B, p, how it was tested), or why the pair cannot be tested."""
    a, b = seed_values(records_a, metric_a), seed_values(records_b, metric_b)
    if not a or not b:
        return "not run: a row has no finished run"
    if predictions and metric_a == metric_b:
        paired = mcnemar(records_a, records_b, predictions)
        if paired is not None:
            seeds, only_a, only_b, p = paired
            return (statistics.mean(a), statistics.mean(b), p,
                    f"McNemar, seeds {', '.join(map(str, seeds))}: {only_a} test points wrong only for {names[0]}, "
                    f"{only_b} only for {names[1]}; p = {p:.2g}")
    if len(a) < 2 or len(b) < 2:
        return f"not testable: fewer than 2 seeds (n = {len(a)} / {len(b)})"
    p = welch(a, b)
    return statistics.mean(a), statistics.mean(b), p, f"Welch t over seeds (n = {len(a)} / {len(b)}), p = {p:.2g}"


def decide(relation: str, a_better: bool, p: float) -> str:
    """The verdict of one tested comparison of A with B."""
    significant = p < LEVEL
    if relation == "close":
        return FAILS if significant else HOLDS
    if relation == "not_worse":
        return FAILS if significant and not a_better else HOLDS
    if not significant:
        return NOISE
    return HOLDS if a_better else FAILS


def evaluate(claim: dict, by_row: dict, labels: dict) -> tuple[str, str, str]:
    """(ours, test, verdict) of one claim, from the rows' records."""
    higher = bool(claim.get("higher", False))
    better = (lambda x, y: x > y) if higher else (lambda x, y: x < y)
    if claim["relation"] == "trend":
        rows, metric = claim["rows"], claim["metric"]
        means = [seed_values(by_row.get(r, []), metric) for r in rows]
        if not all(means):
            return "—", "—", "not run: a row has no finished run"
        means = [statistics.mean(v) for v in means]
        ours = " → ".join(f"{m:.2f}" for m in means)
        result = compare(by_row[rows[0]], metric, by_row[rows[-1]], metric, claim.get("predictions"),
                         (labels.get(rows[0], rows[0]), labels.get(rows[-1], rows[-1])))
        if isinstance(result, str):
            return ours, "—", result
        _, _, p, how = result
        last_better = better(means[-1], means[0])
        verdict = decide("better", last_better, p)
        if verdict == HOLDS and not all(better(y, x) for x, y in zip(means, means[1:])):
            verdict = f"{FAILS} (not monotone)"
        return ours, f"last row against the first: {how}", verdict
    a, b = claim["a"], claim["b"]
    metric_a, metric_b = claim.get("metric_a", claim.get("metric")), claim.get("metric_b", claim.get("metric"))
    result = compare(by_row.get(a, []), metric_a, by_row.get(b, []), metric_b, claim.get("predictions"),
                     (labels.get(a, a), labels.get(b, b)))
    values_a, values_b = seed_values(by_row.get(a, []), metric_a), seed_values(by_row.get(b, []), metric_b)
    ours = (f"{labels.get(a, a)} {statistics.mean(values_a):.2f} vs {labels.get(b, b)} {statistics.mean(values_b):.2f}"
            if values_a and values_b else "—")   # shown even where too few seeds leave it untested
    if isinstance(result, str):
        return ours, "—", result
    mean_a, mean_b, p, how = result
    return ours, how, decide(claim["relation"], better(mean_a, mean_b), p)


def claims_section(spec: dict, by_row: dict, labels: dict) -> list[str]:
    """The '## Paper claims' section: each claim with our numbers, its test and its verdict."""
    from mmrepro.tables.build import md

    lines = ["## Paper claims", "", "Does each ordering the paper reports hold in these runs? Tested at the 5% level: "
             "McNemar's exact test on the same test points where the runs saved their predictions, else Welch's "
             "t-test on the per-seed values. \"Within seed noise\": the claimed difference is not distinguishable "
             "from seed-to-seed variation here.", "", "| claim (paper) | ours (mean over seeds) | test | verdict |",
             "|---|---|---|---|"]
    for claim in spec["claims"]:
        ours, how, verdict = evaluate(claim, by_row, labels)
        lines.append(f"| {md(claim['claim'])} | {md(ours)} | {md(how)} | **{verdict}** |")
    return lines + [""]
