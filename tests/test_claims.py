"""The verdict of each paper claim a table tests (mmrepro/tables/claims.py), on crafted records
whose answer is known: holds, does not hold, within seed noise, for every relation and both tests."""

import numpy as np
import pytest

from mmrepro.tables.claims import FAILS, HOLDS, NOISE, evaluate, welch
from mmrepro.tables.index import claims as index_claims


def runs(values, metric="m"):
    return [{"status": "ok", "seed": s, "metrics": {metric: v}} for s, v in enumerate(values)]


LOW, HIGH, SPREAD = runs([1.0, 1.1, 0.9]), runs([5.0, 5.1, 4.9]), runs([0.0, 3.0, 6.0])


@pytest.mark.parametrize("relation,a,b,verdict", [
    ("better", LOW, HIGH, HOLDS),            # A clearly lower (errors: lower is better)
    ("better", HIGH, LOW, FAILS),            # A clearly worse
    ("better", LOW, SPREAD, NOISE),          # A's mean lower, but the seeds overlap
    ("close", LOW, runs([1.05, 0.95, 1.0]), HOLDS),
    ("close", LOW, HIGH, FAILS),
    ("not_worse", LOW, SPREAD, HOLDS),       # no difference found: at least as good
    ("not_worse", HIGH, LOW, FAILS),
    ("not_worse", LOW, HIGH, HOLDS),
])
def test_welch_verdicts_on_crafted_seed_values(relation, a, b, verdict):
    ours, how, got = evaluate({"relation": relation, "a": "A", "b": "B", "metric": "m"}, {"A": a, "B": b}, {})
    assert got == verdict
    assert how.startswith("Welch t over seeds (n = 3 / 3)")
    assert ours.startswith("A ") and " vs B " in ours


def test_higher_is_better_flips_the_direction_and_sides_may_use_their_own_metric():
    a, b = runs([-80.0, -80.1, -79.9], "x"), runs([-90.0, -90.2, -89.8], "y")
    claim = {"relation": "better", "higher": True, "a": "A", "b": "B", "metric_a": "x", "metric_b": "y"}
    assert evaluate(claim, {"A": a, "B": b}, {})[2] == HOLDS
    assert evaluate({**claim, "higher": False}, {"A": a, "B": b}, {})[2] == FAILS


def test_trend_holds_only_when_monotone_and_the_ends_differ():
    claim = {"relation": "trend", "higher": True, "rows": ["r1", "r2", "r3"], "metric": "m"}
    rising = {"r1": runs([1.0, 1.1, 0.9]), "r2": runs([2.0, 2.1, 1.9]), "r3": runs([3.0, 3.1, 2.9])}
    assert evaluate(claim, rising, {})[2] == HOLDS
    assert evaluate(claim, rising, {})[0] == "1.00 → 2.00 → 3.00"
    dip = {**rising, "r2": runs([0.0, 0.1, -0.1])}
    assert evaluate(claim, dip, {})[2] == f"{FAILS} (not monotone)"
    assert evaluate({**claim, "higher": False}, rising, {})[2] == FAILS
    flat = {**rising, "r3": runs([0.0, 3.0, 1.5])}
    assert evaluate(claim, flat, {})[2] == NOISE


def test_missing_rows_and_single_seeds_are_said_not_guessed():
    claim = {"relation": "better", "a": "A", "b": "B", "metric": "m"}
    assert evaluate(claim, {"A": LOW, "B": []}, {})[2].startswith("not run")
    failed = [{"status": "failed", "seed": 0, "error": "boom"}]
    assert evaluate(claim, {"A": LOW, "B": failed}, {})[2].startswith("not run")
    ours, _, verdict = evaluate(claim, {"A": LOW, "B": runs([5.0])}, {})
    assert verdict.startswith("not testable: fewer than 2 seeds") and ours.endswith("vs B 5.00")   # means still shown
    nan = runs([float("nan"), 5.0, 5.1])   # a diverged seed's metric is not a value
    assert "n = 3 / 2" in evaluate(claim, {"A": LOW, "B": nan}, {})[1]


def test_mcnemar_decides_where_both_rows_saved_test_predictions(tmp_path):
    label = np.repeat(np.arange(10), 10)

    def rec(name, seed, wrong, error):
        run = tmp_path / f"{name}{seed}"
        run.mkdir()
        predicted = label.copy()
        predicted[wrong] = (label[wrong] + 1) % 10
        np.savez(run / "test_predictions.npz", label=label, **{"predicted/left": predicted})
        return {"status": "ok", "seed": seed, "run_dir": str(run), "metrics": {"test_error/left": error}}

    # A misses points 0-1, B misses points 0-21: 20 points only B gets wrong, none only A.
    a = [rec("a", s, np.arange(2), 2.0) for s in (0, 1)]
    b = [rec("b", s, np.arange(22), 22.0) for s in (0, 1)]
    claim = {"relation": "better", "a": "A", "b": "B", "metric": "test_error/left", "predictions": "predicted/left"}
    ours, how, verdict = evaluate(claim, {"A": a, "B": b}, {"A": "MP", "B": "PCD"})
    assert verdict == HOLDS and ours == "MP 2.00 vs PCD 22.00"
    assert how.startswith("McNemar, seeds 0, 1: 0 test points wrong only for MP, 40 only for PCD")
    # Identical predictions: no discordant point, so no difference; Welch would call it "does not hold".
    same = [rec("c", s, np.arange(22), 22.0) for s in (0, 1)]
    assert evaluate({**claim, "relation": "close"}, {"A": same, "B": b}, {})[2] == HOLDS
    # Without the key, Welch on the seeds decides.
    assert evaluate({**claim, "predictions": "predicted/right"}, {"A": a, "B": b}, {})[1].startswith("Welch")


def test_welch_of_constant_samples():
    assert welch([1.0, 1.0], [1.0, 1.0]) == 1.0 and welch([1.0, 1.0], [2.0, 2.0]) == 0.0


def test_the_index_counts_a_tables_verdicts():
    text = ("## Paper claims\n\nintro\n\n| claim (paper) | ours | test | verdict |\n|---|---|---|---|\n"
            "| a | x | t | **holds** |\n| b | x | t | **does not hold (not monotone)** |\n| c | x | t | **holds** |\n"
            "| d | — | — | **not run: a row has no finished run** |\n\n## Convergence\n")
    assert index_claims(text) == "4 claims: 2 holds, 1 does not hold, 1 not run"
    assert index_claims("## Results\n") == ""
