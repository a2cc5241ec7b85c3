"""What reaches the experiment loggers (config `logger`: none, csv, tensorboard, wandb, or many of
them): the resolved config and group choices as hyperparameters when training starts, train/* and
val/* during training (Lightning), and after evaluation the evaluator's final metrics at the last
step; W&B also gets the run's figures as images and an artifact holding run.json and them, and its run is finished
so that the next member of an in-process sweep starts its own."""

from __future__ import annotations

import math
from pathlib import Path

from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf


def logger_nodes(node: DictConfig | None) -> list[tuple[str, DictConfig]]:
    """(config key, logger config) pairs: one logger (`_target_` at the top) or a mapping of them."""
    if not node:
        return []
    if "_target_" in node:
        return [("logger", node)]
    return [(f"logger.{name}", sub) for name, sub in node.items() if sub]


def log_config(loggers: list[Logger], cfg: DictConfig, choices: dict) -> None:
    hparams = {**OmegaConf.to_container(cfg, resolve=True), "choices": choices}
    for logger in loggers:
        logger.log_hyperparams(hparams)


def log_results(loggers: list[Logger], metrics: dict, run_dir: Path, step: int) -> None:
    numbers = {k: float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    for logger in loggers:
        logger.log_metrics(numbers, step=step)
        if isinstance(logger, WandbLogger):
            import wandb

            figures = sorted(run_dir.glob("*.png"))
            if figures:
                logger.log_image("figures", [str(p) for p in figures], step=step, caption=[p.stem for p in figures])
            artifact = wandb.Artifact(f"run-{logger.experiment.id}", type="run-record",
                                      description="the run record (run.json) and the run's figures")
            for path in [run_dir / "run.json", *figures]:
                artifact.add_file(str(path))
            logger.experiment.log_artifact(artifact)
        logger.save()
        logger.finalize("success")
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
