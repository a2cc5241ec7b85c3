"""What every variational model of the tree shares (VAE, CVAE, CMMA, JMVAE; later CMMD and its
baselines): encoders/decoders sized from the datamodule's modalities, per-modality likelihoods,
the KL warm-up, the NaN guard, an optional GAN term on the first modality, and the pieces the
importance-weighted evaluator (mmrepro/eval/log_likelihood.py) draws on.

Conventions: x = the datamodule's first modality (the image), w = its second (label or
attributes). A subclass builds its networks, implements `loss_terms(batch, beta)` (the negative
bound, minimised) and declares its IW estimates in BOUNDS:
  name -> (proposal, target, minus_log_p_w)
proposal: the observed modalities of q(z | .) ("x", "w", "xw"); target: the modalities whose
log p(. | z) enter the weight; minus_log_p_w: subtract an N_w-sample estimate of log p(w)
(Appendix B, Eq. 8-9). The weight is log p(target | z) + log p(z [| w]) - log q(z | proposal).

GAN (JMVAE Sec. 4.2, "the same way as a VAE-GAN", Larsen et al. 2015), on when gan_weight > 0:
a discriminator D on x; the x decoder (the generator) also minimises gan_weight times the
non-saturating loss -log D(G(z)) for z from q (detached: the encoder gets no GAN gradient) and for
z from the model's prior; D minimises its binary cross-entropy on real x against both fakes
(one Adam step each per batch, beta1 0.5, as the official JMVAE-GAN code). The reconstruction
term stays the pixel likelihood (the official code does the same; Larsen et al. use D features).
"""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmrepro.compiling import compiled
from mmrepro.data.modalities import as_modalities
from mmrepro.errors import ConfigError, check_choice, check_range
from mmrepro.models.components.towers import ACTIVATIONS, NETWORKS, Decoder, Encoder, conv_stack, is_image
from mmrepro.models.guards import check_finite_loss
from mmrepro.models.validation import forked_rng, log_val
from mmrepro.objectives.gaussian import log_normal
from mmrepro.objectives.likelihoods import log_likelihood


class VariationalModule(L.LightningModule):
    BOUNDS: dict[str, tuple[str, str, bool]] = {}
    SUPPORTS_NETWORK_VAR = False  # decoders that output a log-variance per dimension (CMMD Eq. 6)
    # Batched sweeps (mmrepro/batched.py): the constructor arguments that may differ per member
    # besides seed and lr (None: this model's members are not stacked).
    MEMBER_HYPERPARAMETERS: tuple[str, ...] | None = None

    def __init__(self, modalities, latent_dim: int = 64, tower: tuple = (512, 512), decoder: tuple = (512, 512, 512),
                 conv_channels: tuple = (), networks: str = "mlp", activation: str = "leaky_relu", warmup_epochs: int = 200,
                 lr: float = 1e-3, gaussian_var: float | str = 1.0, gan_weight: float = 0.0, n_modalities: int = 2):
        super().__init__()
        modalities = as_modalities(modalities)
        if len(modalities) < n_modalities:
            raise ConfigError("dataset", f"{type(self).__name__} needs {n_modalities} modalities, got {len(modalities)}")
        self.modalities = list(modalities)[:n_modalities] if n_modalities else list(modalities)
        self.by_name = {m.name: m for m in self.modalities}
        self.x = self.modalities[0].name
        self.w = self.modalities[1].name if len(self.modalities) > 1 else None
        self.latent_dim = check_range("latent_dim", latent_dim, 1, integer=True)
        self.tower = [check_range("tower[]", t, 1, integer=True) for t in tower]
        self.decoder_sizes = [check_range("decoder[]", t, 1, integer=True) for t in decoder]
        self.conv_channels = [check_range("conv_channels[]", c, 1, integer=True) for c in conv_channels]
        self.networks = check_choice("networks", networks, NETWORKS)
        if not self.tower:
            raise ConfigError("tower", "needs at least one layer")
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.warmup_epochs = check_range("warmup_epochs", warmup_epochs, 0, integer=True)
        self.lr = check_range("lr", lr, 0, lo_inclusive=False)
        self.gan_weight = check_range("gan_weight", gan_weight, 0)
        if gaussian_var == "learned":
            self.log_var = nn.ParameterDict({m.name: nn.Parameter(torch.zeros(m.shape))
                                             for m in self.modalities if m.likelihood == "gaussian"})
        elif gaussian_var == "network":
            if not self.SUPPORTS_NETWORK_VAR:
                raise ConfigError("gaussian_var", f"{type(self).__name__} allows a number > 0 or learned, not network")
        else:
            check_range("gaussian_var", gaussian_var, 0, lo_inclusive=False)
        self.gaussian_var = gaussian_var
        self.last_finite_loss = float("nan")
        self.compile_backend: bool | str = False   # compile_loss(): the training loss through torch.compile
        self._compiled_loss = None
        # One optimiser: Lightning's automatic optimisation (gradient clipping, accumulation, precision
        # flags work); with the GAN term, two optimisers stepped by hand (training_step).
        self.automatic_optimization = self.gan_weight == 0
        if self.gan_weight > 0:
            self.discriminator = self.make_discriminator(self.modalities[0].shape)

    # --- building blocks ------------------------------------------------------------------------
    def encoder(self, names: list[str], latent_dim: int | None = None) -> Encoder:
        return Encoder([self.by_name[n] for n in names], latent_dim or self.latent_dim, self.tower,
                       self.conv_channels, self.activation, self.networks)

    def decoder(self, name: str, condition: str | None = None, extra: int = 0) -> Decoder:
        """p(name | z [, condition]); `extra` more input units after z (VCCA-private's h)."""
        extra += self.by_name[condition].dim if condition else 0
        return Decoder(self.latent_dim + extra, self.decoder_sizes, self.by_name[name], self.activation,
                       self.conv_channels, self.networks)

    def make_discriminator(self, shape) -> nn.Module:
        if self.conv_channels and is_image(shape):
            body = conv_stack(shape[0], self.conv_channels, "leaky_relu", batch_norm=False)  # official code: no BN in D
            scale = 2 ** len(self.conv_channels)
            width = self.conv_channels[-1] * (shape[1] // scale) * (shape[2] // scale)
        else:
            body, width = nn.Flatten(), math.prod(shape)
        hidden = self.decoder_sizes[0] if self.decoder_sizes else 512
        return nn.Sequential(body, nn.Linear(width, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def log_lik(self, name: str, output: Tensor, target: Tensor) -> Tensor:
        """log p(target | decoder output) per example, (N,)."""
        kind = self.by_name[name].likelihood
        if kind == "gaussian" and self.gaussian_var == "network":     # output (N, 2, *shape): mean, log-variance
            mu, logvar = output[:, 0], output[:, 1]
            ll = -0.5 * (math.log(2 * math.pi) + logvar + (target.reshape(mu.shape) - mu) ** 2 / logvar.exp())
            return ll.reshape(ll.shape[0], -1).sum(1)
        target = target.reshape(output.shape)
        if kind == "gaussian" and self.gaussian_var == "learned":
            logvar = self.log_var[name]
            ll = -0.5 * (math.log(2 * math.pi) + logvar + (target - output) ** 2 / logvar.exp())
            return ll.reshape(ll.shape[0], -1).sum(1)
        fixed = self.gaussian_var if isinstance(self.gaussian_var, (int, float)) else 1.0  # non-gaussian kinds
        return log_likelihood(kind, output, target, fixed)

    def mean(self, name: str, output: Tensor) -> Tensor:
        """The decoder's output as a mean in data space (probabilities for bernoulli/categorical)."""
        kind = self.by_name[name].likelihood
        if kind == "gaussian" and self.gaussian_var == "network":
            return output[:, 0]
        return torch.sigmoid(output) if kind == "bernoulli" else torch.softmax(output, -1) if kind == "categorical" else output

    # --- what subclasses provide ------------------------------------------------------------------
    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        raise NotImplementedError

    def proposal(self, batch: dict[str, Tensor], observed: str) -> tuple[Tensor, Tensor]:
        """(mu, logvar) of q(z | observed) for observed in "x", "w", "xw"."""
        raise NotImplementedError

    def prior(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(mu, logvar) of p(z) for the batch: N(0, I) unless the model has a conditional prior."""
        mu = torch.zeros(len(batch[self.x]), self.latent_dim, device=self.device)
        return mu, torch.zeros_like(mu)

    def decode(self, name: str, z: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Decoder output for modality `name` from z of shape (N, d); batch rows align with z."""
        return self.decoders[name](z)

    def generate(self, batch: dict[str, Tensor]) -> Tensor | None:
        """Mean of x generated from w alone (Figure 7), or None if the model cannot."""
        return None

    def representation(self, batch: dict[str, Tensor]) -> Tensor:
        """A sample of the latent the paper plots in Figure 3."""
        mu, logvar = self.proposal(batch, "xw")
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    # --- importance weights (Appendix B) ------------------------------------------------------------
    def iw_terms(self, batch: dict[str, Tensor], observed: str, k: int) -> dict[str, Tensor]:
        """For k samples z ~ q(z | observed) per example: log q, log p(z), and log p(m | z) for
        each modality, each of shape (k, B). One decoder pass per modality for all k*B samples."""
        mu, logvar = self.proposal(batch, observed)
        z = mu + torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype) * (0.5 * logvar).exp()
        p_mu, p_logvar = self.prior(batch)
        out = {"log_q": log_normal(z, mu, logvar), "log_prior": log_normal(z, p_mu, p_logvar)}
        flat = z.reshape(-1, z.shape[-1])
        rep = {n: t.unsqueeze(0).expand(k, *t.shape).reshape(-1, *t.shape[1:]) for n, t in batch.items()
               if n in self.by_name}
        for m in self.modalities:
            if hasattr(self, "decoders") and m.name in self.decoders:
                out[m.name] = self.log_lik(m.name, self.decode(m.name, flat, rep), rep[m.name]).view(k, -1)
        return out

    def log_p_w(self, batch: dict[str, Tensor], n_w: int) -> Tensor:
        """log p(w) = log (1/N_w) sum_i p(w | z_i), z_i ~ N(0, I) (Appendix B, under Eq. 9); the
        N_w prior samples are drawn afresh for every call and shared by the call's examples. (B,)"""
        w = batch[self.w]
        z = torch.randn(n_w, self.latent_dim, device=w.device, dtype=w.dtype)
        out = self.decode(self.w, z, batch)                                    # (N_w, *shape)
        b = len(w)
        out = out.unsqueeze(1).expand(n_w, b, *out.shape[1:]).reshape(n_w * b, *out.shape[1:])
        target = w.unsqueeze(0).expand(n_w, *w.shape).reshape(n_w * b, *w.shape[1:])
        ll = self.log_lik(self.w, out, target).view(n_w, b)
        return torch.logsumexp(ll, 0) - math.log(n_w)

    # --- training -----------------------------------------------------------------------------------
    def warmup_beta(self, epoch: int) -> float:
        """beta_t = min(1, epoch / Nt) with 0-based epochs: 0 in the first epoch, 1 from epoch Nt on."""
        return 1.0 if self.warmup_epochs == 0 else min(1.0, epoch / self.warmup_epochs)

    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        sample = self.trainer.datamodule.rows("train", 0, 1000)
        for m in self.modalities:
            x = sample[m.name]
            if m.likelihood == "bernoulli" and (x.min() < 0 or x.max() > 1):
                raise ConfigError("dataset", f"modality {m.name!r} is bernoulli but its data span "
                                  f"{float(x.min()):.3g}..{float(x.max()):.3g}, outside [0, 1]")

    def model_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("discriminator.")]

    def configure_optimizers(self):
        # fused: one kernel for the whole update (CPU and CUDA); same arithmetic as the default Adam.
        opt = torch.optim.Adam(self.model_parameters(), lr=self.lr, fused=True)
        if self.gan_weight == 0:
            return opt
        return [opt, torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=(0.5, 0.999), fused=True)]

    def compile_loss(self, backend: bool | str = True) -> None:
        """Train through torch.compile(loss_terms) (the top-level `compile`; mmrepro/compiling.py).
        Validation and evaluation stay eager."""
        self.compile_backend, self._compiled_loss = backend, None

    def training_loss(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        """loss_terms, compiled after compile_loss() (beta then enters as a tensor: one graph for
        every warm-up epoch)."""
        if not self.compile_backend:
            return self.loss_terms(batch, beta)
        if self._compiled_loss is None:
            self._compiled_loss = compiled(self.loss_terms, self.compile_backend)
        return self._compiled_loss(batch, torch.tensor(beta, device=self.device))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        terms = self.training_loss(batch, self.warmup_beta(self.current_epoch))
        if self.automatic_optimization:
            check_finite_loss(self, terms["loss"], "model.lr")
            self.log_terms(terms, batch)
            return terms["loss"]
        opt, opt_d = self.optimizers()   # the GAN term: generator (the model) and discriminator
        fakes = self.fakes(batch, terms.pop("z").detach())
        gen = sum(F.softplus(-self.discriminator(f)).mean() for f in fakes)   # -log D(G(z))
        loss = terms["loss"] + self.gan_weight * gen
        terms["gan_generator"] = gen.detach()
        check_finite_loss(self, loss, "model.lr")
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        real = self.discriminator(batch[self.x])
        d_loss = F.softplus(-real).mean() + sum(F.softplus(self.discriminator(f.detach())).mean() for f in fakes)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        terms["gan_discriminator"] = d_loss.detach()
        self.log_terms(terms, batch)
        return None

    def log_terms(self, terms: dict[str, Tensor], batch: dict[str, Tensor]) -> None:
        """train/* on the steps Lightning writes to the loggers (every trainer.log_every_n_steps)."""
        terms.pop("z", None)
        updated = self.global_step + (1 if self.automatic_optimization else 0)  # counting this step's update
        if updated % self.trainer.log_every_n_steps == 0:
            size = len(batch[self.x])
            self.log_dict({f"train/{k}": v.detach() for k, v in terms.items() if k != "loss"}, batch_size=size)
            self.log("train/loss", terms["loss"].detach(), prog_bar=True, batch_size=size)

    def validation_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The training objective on a validation batch, warm-up finished (beta = 1), per example."""
        return self.loss_terms(batch, 1.0)["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        with forked_rng(self.device):
            loss = self.validation_loss(batch)
        log_val(self, "val/loss", loss, len(batch[self.x]))

    def fakes(self, batch: dict[str, Tensor], z_q: Tensor) -> list[Tensor]:
        """Generated x for the GAN term: from z ~ q (encoder detached) and from z ~ the prior."""
        mu, logvar = (t.detach() for t in self.prior(batch))
        z_p = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return [self.mean(self.x, self.decode(self.x, z, batch)) for z in (z_q, z_p)]
