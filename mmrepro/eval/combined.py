"""Several evaluation protocols on one trained model (e.g. latent accuracy and coherence, which
CMMD Tables 5 and 6 read from the same MNIST-SVHN-Text runs): each part's check() before training,
then each part in order, their metrics merged (a key two parts both write is an error)."""

from __future__ import annotations

from pathlib import Path

from mmrepro.errors import ConfigError


class Combined:
    def __init__(self, **parts):
        if not parts:
            raise ConfigError("eval", "a combined evaluation needs at least one part")
        self.parts = parts

    def check(self, model, modality_names: list[str]) -> None:
        for part in self.parts.values():
            part.check(model, modality_names)

    def __call__(self, model, datamodule, run_dir: Path) -> dict:
        metrics: dict = {}
        for name, part in self.parts.items():
            new = part(model, datamodule, run_dir)
            clash = sorted(set(new) & set(metrics))
            if clash:
                raise ConfigError("eval", f"part {name!r} writes metric {clash[0]!r} that another part wrote")
            metrics.update(new)
        return metrics
