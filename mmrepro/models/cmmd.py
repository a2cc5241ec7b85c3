"""CMMD, the conditional multimodal discriminative model (Mancisidor et al.): conditional prior
p(z|x_O), encoder q(z|x_O, x_M, y), decoders p(x_m|x_O, z) for each missing modality (Eq. 6: Gaussian
whose mean and variance are network outputs, or Bernoulli), classifier p(y|z). Each network is an
MLP on its concatenated inputs, softplus, dropout after every hidden layer (Appendix C).

Loss minimised per batch (Eq. 5, negated; batch means):
  -log p(x_M | x_O, z_q) - alpha * log p(y | z_p) + omega * KL(q(z|x_O,x_M,y) || p(z|x_O))
  + (1 - omega) * lambda * MMD^2[{z_q}, {z_p}]
with z_q ~ q (one reparameterised sample per example), z_p ~ p(z|x_O), the MMD over the batch's
samples (mmrepro/objectives/mmd.py; the marginal q(z|x_O) against the marginal prior). At omega = 1
this is the negative conditional ELBO with the classifier term.

Paper vs official code (config values; docs/cmmd.md), the paper the default:
- prior_z: the classifier is fed z ~ p(z|x_O) in training and test, and generation at test decodes
  z ~ p(z|x_O) (paper: `sample`) | the prior mean, as the code does for both (`mean`).
- kl: `exact` | `code`: the code's KL lacks the 0.5 on sum(var_q / var_p).
Silent in the paper, settled here:
- cls_reduction: the paper writes a per-example objective, but its MMD is a batch term, so how the
  terms are reduced over a batch is open. Default `sum` (the code): alpha times the summed
  cross-entropy, the other terms batch means (an effective alpha x batch size). With `mean` and
  the paper's alpha = 10, lambda = 1000, the MMD term dominates and the classifier barely learns
  (embedded digits, 1,500 steps: 56% test error against 19% with `sum`). one latent sample per example; the MMD kernel of the code
(scale d^2, biased estimator; `mmd_scale`, `mmd_estimator`); z_p reuses z_q's noise (the code);
PyTorch's default initialisation (the code: N(0, 0.001^2) weights); no early stopping, the last epoch
is evaluated (the code).
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from mmrepro.errors import check_choice, check_range
from mmrepro.models.components.mopoe_networks import Generator
from mmrepro.models.components.towers import ConcatMLP, Encoder, GaussianHead
from mmrepro.models.roles import label_input, label_nll, label_probs, require_label, split_roles
from mmrepro.models.validation import ClassifierValidation
from mmrepro.models.variational import VariationalModule
from mmrepro.objectives.gaussian import kl_normal
from mmrepro.objectives.mmd import ESTIMATORS, mmd


class CMMDModule(ClassifierValidation, VariationalModule):
    MEMBER_HYPERPARAMETERS = ("omega", "alpha", "lam")   # per member in a batched sweep (mmrepro/batched.py)
    SUPPORTS_NETWORK_VAR = True

    def __init__(self, modalities, label=None, observed: list[str] | None = None, encoder=(2500, 2500, 2500),
                 prior=(1024, 1024, 1024), decoder=(1024, 1024, 1024), classifier=(50, 50), latent_dim: int = 50,
                 dropout: float = 0.2, omega: float = 0.5, alpha: float = 10.0, lam: float = 1000.0,
                 prior_z: str = "sample", kl: str = "exact", cls_reduction: str = "sum",
                 mmd_scale: float | None = None, mmd_estimator: str = "biased", activation: str = "softplus",
                 lr: float = 1e-4, gaussian_var: float | str = "network", predict_samples: int = 1,
                 networks: str = "mlp"):
        super().__init__(modalities, latent_dim=latent_dim, tower=encoder, decoder=decoder, activation=activation,
                         warmup_epochs=0, lr=lr, gaussian_var=gaussian_var, n_modalities=0, networks=networks)
        self.label = require_label(label, "cmmd")
        self.supervised = True
        self.observed, self.missing = split_roles(self.modalities, observed)
        self.omega = check_range("omega", omega, 0, 1)
        self.alpha = check_range("alpha", alpha, 0)
        self.lam = check_range("lam", lam, 0)
        self.dropout = check_range("dropout", dropout, 0, 1, hi_inclusive=False)
        self.prior_z = check_choice("prior_z", prior_z, ("sample", "mean"))
        self.predict_samples = check_range("predict_samples", predict_samples, 1, integer=True)
        self.kl = check_choice("kl", kl, ("exact", "code"))
        self.cls_reduction = check_choice("cls_reduction", cls_reduction, ("mean", "sum"))
        self.mmd_estimator = check_choice("mmd_estimator", mmd_estimator, ESTIMATORS)
        self.mmd_scale = None if mmd_scale is None else check_range("mmd_scale", mmd_scale, 0, lo_inclusive=False)
        dims = {m.name: m.dim for m in self.modalities}
        obs = {n: dims[n] for n in self.observed}
        net = dict(activation=self.activation, dropout=self.dropout)
        self.enc = ConcatMLP({**{n: dims[n] for n in self.missing}, **obs, "y": self.label.dim}, self.tower, None, **net)
        self.enc_head = GaussianHead(self.enc.width, self.latent_dim)
        if self.networks == "mopoe":
            self.prior_net = Encoder([self.by_name[n] for n in self.observed], self.latent_dim, [], [], **net,
                                     networks="mopoe")
            self.decoders = nn.ModuleDict({n: Generator(self.by_name[n], self.latent_dim, **net,
                                                        out_mult=self.out_units(n) // self.by_name[n].dim)
                                           for n in self.missing})
        else:
            mlp = ConcatMLP(obs, [check_range("prior[]", p, 1, integer=True) for p in prior], None, **net)
            self.prior_net = nn.Sequential(mlp, GaussianHead(mlp.width, self.latent_dim))
            self.decoders = nn.ModuleDict({n: ConcatMLP({"z": self.latent_dim, **obs}, self.decoder_sizes,
                                                        self.out_units(n), **net) for n in self.missing})
        self.classifier = ConcatMLP({"z": self.latent_dim}, [check_range("classifier[]", c, 1, integer=True)
                                                             for c in classifier], self.label.dim, **net)

    def out_units(self, name: str) -> int:
        m = self.by_name[name]
        return 2 * m.dim if m.likelihood == "gaussian" and self.gaussian_var == "network" else m.dim

    # --- the networks ---------------------------------------------------------------------------
    def posterior(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        if self.supervised:
            y = label_input(self.label, batch)
        else:  # stage 1 (unsupervised_stage): y is omitted, i.e. its input weights get no gradient
            y = batch[self.observed[0]].new_zeros(len(batch[self.observed[0]]), self.label.dim)
        return self.enc_head(self.enc({**batch, "y": y}))

    @contextlib.contextmanager
    def unsupervised_stage(self):
        """Stage 1 of the two-stage scheme (Sec. 4.3.3, MIR-Flickr): "without the classifier and
        omitting the class label in the encoder, i.e. q(z|x_O, x_M)". Feeding y = 0 is exactly that
        model: the encoder's y weights get zero gradient (Adam leaves them at their random
        initialisation, the paper's stage-2 start) and the classifier gets none."""
        self.supervised = False
        try:
            yield
        finally:
            self.supervised = True

    def prior(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return self.prior_net(batch)

    def decode(self, name: str, z: Tensor, batch: dict[str, Tensor]) -> Tensor:
        out = self.decoders[name](z if self.networks == "mopoe" else {**batch, "z": z})
        shape = self.by_name[name].shape
        return out.view(len(z), 2, *shape) if out.shape[1] == 2 * self.by_name[name].dim else out.view(len(z), *shape)

    def prior_sample(self, mu: Tensor, logvar: Tensor, eps: Tensor | None = None) -> Tensor:
        if self.prior_z == "mean":
            return mu
        return mu + (torch.randn_like(mu) if eps is None else eps) * (0.5 * logvar).exp()

    # --- Eq. 5 ------------------------------------------------------------------------------------
    def kl_terms(self, mu_q, logvar_q, mu_p, logvar_p) -> Tensor:
        kl = kl_normal(mu_q, logvar_q, mu_p, logvar_p)
        if self.kl == "code":  # the code's expression: the variance ratio without its 0.5
            kl = kl + 0.5 * (logvar_q - logvar_p).exp().sum(-1)
        return kl

    def uses_mmd(self) -> bool:
        """omega = 1 leaves the MMD out; a per-member omega (mmrepro/batched.py, a tensor) keeps it."""
        return torch.is_tensor(self.omega) or self.omega < 1

    def kl_inputs(self, *stats: Tensor) -> tuple[Tensor, ...]:
        """The KL's inputs; with a per-member omega (a tensor) a member at omega 0 gets them detached,
        so no gradient reaches its weights through the KL: torch.where in omega_kl drops the KL's
        value, but 0 times an overflowing KL's local gradient would still be NaN in the backward."""
        if torch.is_tensor(self.omega):
            return tuple(torch.where(self.omega > 0, t, t.detach()) for t in stats)
        return stats

    def omega_kl(self, kl: Tensor) -> Tensor:
        """omega * KL; omega = 0 leaves the KL out (as omega = 1 leaves the MMD out): 0 * an
        overflowing KL would be NaN."""
        if torch.is_tensor(self.omega):
            return torch.where(self.omega > 0, self.omega * kl, torch.zeros_like(kl))
        return self.omega * kl if self.omega > 0 else torch.zeros_like(kl)

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        mu_q, logvar_q = self.posterior(batch)
        mu_p, logvar_p = self.prior(batch)
        eps = torch.randn_like(mu_q)
        z_q = mu_q + eps * (0.5 * logvar_q).exp()
        z_p = self.prior_sample(mu_p, logvar_p, eps)
        rec = sum(self.log_lik(n, self.decode(n, z_q, batch), batch[n]) for n in self.missing)
        cls = label_nll(self.label, self.classifier({"z": z_p}), batch) if self.supervised else rec.new_zeros(len(rec))
        kl = self.kl_terms(*self.kl_inputs(mu_q, logvar_q, mu_p, logvar_p))
        # MMD between the batch's prior and posterior samples; with prior_z = mean the prior side
        # still needs samples, drawn with the same noise.
        z_p_mmd = mu_p + eps * (0.5 * logvar_p).exp()
        div = mmd(z_p_mmd, z_q, self.mmd_scale, self.mmd_estimator) if self.uses_mmd() else rec.new_zeros(())
        cls_term = cls.sum() if self.cls_reduction == "sum" else cls.mean()
        loss = (-rec + self.omega_kl(kl)).mean() + self.alpha * cls_term + (1 - self.omega) * self.lam * div
        return {"loss": loss, "reconstruction": rec.mean(), "classification": cls.mean(), "kl": kl.mean(),
                "mmd": div.detach(), "z": z_q}

    def validation_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Eq. 5 as training weighs it on a batch of the training size (cls_reduction = sum: alpha
        times batch_size times the mean cross-entropy), on a validation batch of any size; the
        MMD term is estimated on the whole validation batch."""
        t = self.loss_terms(batch, 1.0)
        scale = self.trainer.datamodule.batch_size if self.cls_reduction == "sum" else 1
        return (-t["reconstruction"] + self.omega_kl(t["kl"]) + self.alpha * scale * t["classification"]
                + (1 - self.omega) * self.lam * t["mmd"])

    # --- what the evaluator reads ------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        """The model's p(y | x_O) = E_{p(z|x_O)} p(y | z), estimated with `predict_samples` draws
        of z (prior_z = sample; one draw is the paper's literal "z ~ p(z|x_O) at test"), or p(y | z)
        at the prior mean (prior_z = mean, the code): class probabilities (B, C)."""
        mu, logvar = self.prior(batch)
        k = 1 if self.prior_z == "mean" else self.predict_samples
        z = self.prior_sample(mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape)).reshape(-1, mu.shape[-1])
        return label_probs(self.label, self.classifier({"z": z})).view(k, len(mu), -1).mean(0)

    @torch.no_grad()
    def latent_mean(self, batch: dict[str, Tensor]) -> Tensor:
        """The mean of the model's distribution of z given x_O, p(z|x_O): where every model's x_M is
        generated for the rmse (mmrepro/eval/generation.py; the official draw_x2)."""
        return self.prior(batch)[0]

    @torch.no_grad()
    def generate_sampled(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The decoder mean of each missing modality at one z ~ p(z|x_O) (prior_z = sample, the
        paper's "z ~ p(z|x_O) at test"; the table's extra "sampled z" rmse column)."""
        z = self.prior_sample(*self.prior(batch))
        return {n: self.mean(n, self.decode(n, z, batch)) for n in self.missing}

    @torch.no_grad()
    def generate_from(self, batch: dict[str, Tensor], given: list[str]) -> dict[str, Tensor]:
        """Coherence: CMMD generates x_M from its observed set only, at z ~ p(z|x_O) (prior_z)."""
        if sorted(given) != sorted(self.observed):
            raise ValueError(f"CMMD observing {self.observed} cannot generate from {given}")
        return self.generate_sampled(batch)

    @torch.no_grad()
    def representation(self, batch: dict[str, Tensor]) -> Tensor:
        """The latent the classifier reads at test: the prior mean of p(z | x_O)."""
        return self.prior(batch)[0]

    @torch.no_grad()
    def collapse_posteriors(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Figure 2 (Appendix E): (z|x_O) = the prior p(z|x_O), (z|x_M) = the inference posterior
        q(z|x_O, x_M, y)."""
        return {"observed": self.prior(batch), "missing": self.posterior(batch)}

    @torch.no_grad()
    def decoder_variance(self, batch: dict[str, Tensor]) -> Tensor | None:
        """Figure 2's fourth panel: the variance of each generated dimension of the network-variance
        Gaussian x_M, at the prior mean (where x_M is generated), (B, D); None without one."""
        gaussian = [n for n in self.missing if self.out_units(n) == 2 * self.by_name[n].dim]
        if not gaussian:
            return None
        z = self.latent_mean(batch)
        return torch.cat([self.decode(n, z, batch)[:, 1].flatten(1).exp() for n in gaussian], 1)
