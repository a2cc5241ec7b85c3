"""`hydra/launcher=batched`: the members of a multirun that differ only in seed, model.lr and their
model's per-member hyperparameters train in this process as one stacked model (mmrepro/batched.py);
every other member runs on its own, one after another, as Hydra's basic launcher runs them.
Hydra finds launchers only in the hydra_plugins namespace package, hence this module."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import open_dict

log = logging.getLogger(__name__)


class BatchedLauncher(Launcher):
    def __init__(self) -> None:
        super().__init__()
        self.config = self.task_function = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def job(self, task_function, config) -> JobReturn:
        ret = run_job(hydra_context=self.hydra_context, task_function=task_function, config=config,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ret

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from mmrepro.batched import plan_groups, prepare_member, train_group

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs, batched where they stack")
        configs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = cfg.hydra.job.num = idx
            configs.append(cfg)
        groups, alone = plan_groups(configs)
        runs: dict[int, JobReturn] = {}
        if alone:
            reasons = sorted(set(alone.values()))
            print(f"mmrepro: batched: member(s) {', '.join(str(initial_job_idx + i) for i in sorted(alone))} "
                  f"run one by one: {'; '.join(reasons)}", file=sys.stderr)
        for i in sorted(alone):
            runs[i] = self.job(self.task_function, configs[i])
        for group in groups:
            returns = [self.job(prepare_member, configs[i]) for i in group]
            train_group([r.return_value for r in returns], sweep_dir)
            runs.update(zip(group, returns))
        return [runs[i] for i in range(len(configs))]
