"""Sohn et al. 2014 on MIR-Flickr: the multi-label probe's mAP and the retrieval mAP against values
computed by hand, and the MDRNN path end to end on files in the distribution's exact layout
(synthetic values) to Tables 2, 3 and the retrieval table with Figure 3."""

import numpy as np
import pytest

from mmrepro.eval.multilabel_probe import mean_average_precision, retrieval_average_precision
from tests.conftest import records_under, run_cli


def test_mean_average_precision_by_hand():
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.05]])
    # class 0: ranking 0.9 (pos), 0.8 (neg), 0.3 (pos): AP = (1/1 + 2/3) / 2; class 1: its one positive
    # (0.2) ranks second behind 0.7 (neg): AP = 1/2.
    assert mean_average_precision(y, scores) == pytest.approx(((1 + 2 / 3) / 2 + 1 / 2) / 2)
    # a class without positives is left out, not scored 0
    y3, s3 = np.c_[y, np.zeros(4)], np.c_[scores, np.arange(4)]
    assert mean_average_precision(y3, s3) == pytest.approx(mean_average_precision(y, scores))


def test_retrieval_average_precision_by_hand():
    database = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.2]])
    database_labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    queries = np.array([[2.0, 0.1], [0.0, 3.0], [0.5, 0.5]])
    query_labels = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    ap = retrieval_average_precision(queries, query_labels, database, database_labels)
    # query 0 ranks rows 0, 2, 1, 3 by cosine; relevant (share label 0): rows 0 and 2 -> AP 1.
    # query 1 ranks rows 1, 2, 3, 0; relevant: row 3 only, third -> AP 1/3.
    # query 2 has no label: no relevant row -> NaN (left out of the mean).
    assert ap[0] == pytest.approx(1.0) and ap[1] == pytest.approx(1 / 3) and np.isnan(ap[2])
    from sklearn.metrics import average_precision_score
    sims = (queries[1] / np.linalg.norm(queries[1])) @ (database / np.linalg.norm(database, axis=1, keepdims=True)).T
    assert ap[1] == pytest.approx(average_precision_score((database_labels @ query_labels[1]) > 0, sims))


FAST = ["dataset.max_unlabelled_files=2", "dataset.batch_size=5", "trainer.enable_progress_bar=false",
        "++model.pathways.image=[3857,8,6]", "++model.pathways.text=[2000,8,6]", "model.top_hidden=8",
        "model.stages.layer_epochs=1", "model.stages.top_epochs=1", "model.stages.finetune_epochs=1",
        "model.finetune.T=10", "eval.retrieval.database=16", "eval.retrieval.queries=8", "eval.C_grid=[0.1,1.0]"]


def test_mdrnn_flickr_end_to_end_on_the_fixture_to_the_three_tables(tmp_path):
    from tests.test_mir_flickr import write_synthetic_flickr

    write_synthetic_flickr(tmp_path / "flickr")
    data = [f"dataset.root={tmp_path}/flickr", f"paths.runs_dir={tmp_path}/runs"]
    result = run_cli("-m", "sweep=sohn14_t2", "seed=1,2", *FAST, *data, timeout=600)
    assert result.returncode == 0 and "failed" not in result.stderr, result.stderr[-3000:]
    records = records_under(tmp_path / "runs")
    assert sorted(r["config"]["dataset"]["split"] for r in records) == [1, 2]
    for r in records:
        m = r["metrics"]
        assert r["training"]["epochs"] == 4 and r["config"]["dataset"]["train_on"] == "unlabelled"
        for key in ("test/mAP/image+text", "test/mAP/image", "retrieval/mAP/image+text", "retrieval/mAP/image",
                    "val/mAP/image/T0", "val/mAP/image/T10"):
            assert 0 < m[key] <= 100, (key, m)
        assert m["retrieval/database"] == 16 and m["retrieval/queries"] == 8
    tables = {}
    for table, file in (("sohn14_t2", "t2"), ("sohn14_t3", "t3"), ("sohn14_retrieval", "retrieval")):
        built = run_cli(table, "--variant", "mir_flickr", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                        f"{tmp_path}/results", module="mmrepro.tables")
        assert built.returncode == 0, built.stderr
        tables[table] = (tmp_path / "results" / "sohn14" / f"{file}_mir_flickr.md").read_text()
    t2 = tables["sohn14_t2"].split("## Provenance")[0]
    mdrnn = next(line for line in t2.splitlines() if line.startswith("| MDRNN"))
    assert mdrnn.count("(n=2)") == 2 and "68.6" in mdrnn and "60.7" in mdrnn
    assert "| Autoencoder (Ngiam et al.) (paper only) | 61 | — | 49.5 | — |" in t2 and "not run" not in t2
    t3 = tables["sohn14_t3"]
    assert t3.split("## Results")[1].count("(n=2)") == 12 and "55.7" in t3
    assert t3.split("## Provenance")[1].count("run.json") == 2   # both rows read the same two runs: listed once
    retrieval = tables["sohn14_retrieval"]
    assert retrieval.split("## Provenance")[0].count("(n=2)") == 2 and "63.8" in retrieval
    assert (tmp_path / "results" / "sohn14" / "f3_mir_flickr.png").exists() and "f3_mir_flickr.png" in retrieval
    examples = np.load(records[0]["run_dir"] + "/retrieval_examples.npz")
    assert examples["matches/image+text"].shape == (4, 4) and str(examples["tags"][0]).startswith(("tag", ""))


def test_missing_flickr_files_give_one_reason_per_table_and_unlabelled_training_needs_the_pairs(tmp_path):
    runs = f"paths.runs_dir={tmp_path}/runs"
    result = run_cli("-m", "sweep=sohn14_t2", "seed=1", f"dataset.root={tmp_path}/nowhere", *FAST, runs)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    built = run_cli("sohn14_t2", "--variant", "mir_flickr", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                    f"{tmp_path}/results", module="mmrepro.tables")
    assert built.returncode == 0, built.stderr
    results = (tmp_path / "results" / "sohn14" / "t2_mir_flickr.md").read_text().split("## Provenance")[0]
    assert results.count("combined-00001-of-00100.npy is missing") == 1 and "Every cell of ours is —" in results
    result = run_cli("experiment=sohn14_mdrnn_flickr", "dataset.unlabelled=false", runs)
    assert result.returncode == 2 and "dataset.train_on: unlabelled needs the unlabelled pairs" in result.stderr
