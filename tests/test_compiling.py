"""The top-level `compile` switch (mmrepro/compiling.py): a single run's training loss through
torch.compile gives the eager losses and gradients; bad values are one-line errors; models whose
gradients are written by hand train eager with a note."""

from __future__ import annotations

import pytest
import torch

from mmrepro.bench import experiment_module, random_batch
from mmrepro.compiling import check_backend
from mmrepro.errors import ConfigError
from tests.conftest import records_under, run_cli

QUIET = ("trainer.enable_progress_bar=false", "checkpoint.keep=false")


@pytest.mark.parametrize("experiment", ["jmvae16_jmvae_kl", "cmmd_digits", "mvae_mst", "mmvae_mst", "mopoe_mst"])
def test_compiled_training_loss_and_gradients_equal_the_eager_ones(experiment):
    """Each family's training_loss after compile_loss("aot_eager") (dynamo's trace and AOT autograd,
    no code generation: random draws stay torch's) against loss_terms, eager, on the same batch and
    seed, at two warm-up betas (one graph: beta enters as a tensor)."""
    torch.manual_seed(0)
    module = experiment_module(experiment)
    module.train()
    batch = random_batch(module, 6)
    results = []
    for backend in (False, "aot_eager"):
        module.compile_loss(backend)
        out = []
        for beta in (1.0, 0.25):
            torch.manual_seed(3)
            loss = module.training_loss(batch, beta)["loss"]
            out.append((loss.detach(), torch.autograd.grad(loss, list(module.parameters()), allow_unused=True)))
        results.append(out)
    for (loss, grads), (loss_c, grads_c) in zip(*results):
        torch.testing.assert_close(loss_c, loss)
        assert sum(g is not None for g in grads) > 0
        for g, g_c in zip(grads, grads_c):
            assert (g is None) == (g_c is None)
            if g is not None:
                torch.testing.assert_close(g_c, g)


def test_compile_values_are_checked():
    assert check_backend(None) is False and check_backend(True) is True and check_backend("aot_eager") == "aot_eager"
    with pytest.raises(ConfigError, match="compile: unknown torch.compile backend 'fast'"):
        check_backend("fast")
    with pytest.raises(ConfigError, match="compile: expected true, false or a backend name"):
        check_backend(3)


def test_a_compiled_single_run_trains_and_records_and_a_bad_backend_exits_2(tmp_path):
    """CMMD on the digits with compile=aot_eager: the run finishes and writes its record (with the
    switch in its config); an unknown backend is one line and exit 2; an MRBM says it trains eager."""
    small = ("model.encoder=[16]", "model.prior=[16]", "model.decoder=[16]", "model.classifier=[8]",
             "model.latent_dim=4", "trainer.max_epochs=2", "eval.n_latents=0", "eval.collapse_points=60")
    ok = run_cli("experiment=cmmd_digits", "compile=aot_eager", *small, *QUIET, f"paths.runs_dir={tmp_path / 'a'}")
    assert ok.returncode == 0, ok.stderr[-3000:]
    (record,) = records_under(tmp_path / "a")
    assert record["status"] == "ok" and record["config"]["compile"] == "aot_eager"
    bad = run_cli("experiment=cmmd_digits", "compile=fast", *small, *QUIET, f"paths.runs_dir={tmp_path / 'b'}")
    assert bad.returncode == 2 and "compile: unknown torch.compile backend 'fast'" in bad.stderr
    assert "Traceback" not in bad.stderr
    rbm = run_cli("experiment=sohn14_t1_mrbm_pcd", "dataset=digits_halves", "compile=true", "trainer.max_epochs=1",
                  "model.n_hidden=16", *QUIET, f"paths.runs_dir={tmp_path / 'c'}")
    assert rbm.returncode == 0, rbm.stderr[-3000:]
    assert "compile=true: MRBMModule trains eager" in rbm.stderr
