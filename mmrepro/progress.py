"""Training progress on the console: Lightning's Rich bar on a terminal; elsewhere (a log file, CI,
a batch job) one line per epoch at most, and no more than one per `every_s` seconds (the last epoch
always), instead of the bar's two lines per epoch."""

from __future__ import annotations

import sys
import time

from lightning.pytorch.callbacks import ProgressBar, RichProgressBar


def progress_bar(every_s: float = 10.0) -> ProgressBar:
    """The config's `callbacks.progress` (configs/callbacks/default.yaml)."""
    return RichProgressBar(leave=True) if sys.stdout.isatty() else EpochLines(every_s)


class EpochLines(ProgressBar):
    """`epoch 3/200 (step 30): train/loss 12.35, val/loss 13.6 [1.2 s/epoch]` on stdout; the rate is
    over the epochs since the previous line (what the next ones will likely take)."""

    def __init__(self, every_s: float = 10.0):
        super().__init__()
        self.every_s = every_s
        self.enabled = True
        self.last_line = self.rate_since = 0.0
        self.line_epoch = 0

    @property
    def is_enabled(self) -> bool:
        return self.enabled

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        self.rate_since, self.line_epoch = time.monotonic(), trainer.current_epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        now = time.monotonic()
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if not self.enabled or trainer.sanity_checking or (now - self.last_line < self.every_s and not last):
            return
        per_epoch = (now - self.rate_since) / max(1, trainer.current_epoch + 1 - self.line_epoch)
        self.last_line = self.rate_since = now
        self.line_epoch = trainer.current_epoch + 1
        metrics = {k: v for k, v in trainer.callback_metrics.items() if k.startswith(("train/loss", "val/"))}
        values = ", ".join(f"{k} {float(v):.4g}" for k, v in sorted(metrics.items()))
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} (step {trainer.global_step}): {values} "
              f"[{per_epoch:.3g} s/epoch]", flush=True)
