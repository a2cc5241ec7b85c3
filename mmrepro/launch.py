"""What Hydra launches: the task function, and the config resolvers the run-directory names use
(registered on import). Light, with no torch, so that `mmrepro --help` stays fast; a module of its
own (not __main__) so that launchers which pickle the task (submitit) find it by name."""

from __future__ import annotations

import os
import secrets

from omegaconf import OmegaConf


def launch_id() -> str:
    """A short random id of this invocation, shared with the processes it starts (the environment
    variable MMREPRO_LAUNCH_ID): run and sweep directories end in it, so two runs or sweeps started in
    the same second, on one machine or several sharing a filesystem, never share a directory."""
    return os.environ.setdefault("MMREPRO_LAUNCH_ID", secrets.token_hex(3))


# ${or:a,b}: a unless it is null, else b (used in run-directory names).
OmegaConf.register_new_resolver("or", lambda value, fallback: fallback if value is None else value, replace=True)
OmegaConf.register_new_resolver("launch_id", launch_id, replace=True)
# ${sum:a,b,...}: the numbers' sum (an MDRNN run's trainer.max_epochs: the sum of its stages).
OmegaConf.register_new_resolver("sum", lambda *values: sum(values), replace=True)


def expose_source_plugins() -> None:
    """hydra/launcher=batched lives in the hydra_plugins namespace (where Hydra looks for launchers).
    A regular install puts it there; an editable install's import hook hides namespace portions from
    Hydra's plugin scan, so a source checkout's hydra_plugins/ is added to the namespace's path."""
    from mmrepro import REPO_ROOT

    source = REPO_ROOT / "hydra_plugins"
    if not source.is_dir():
        return
    import hydra_plugins

    if str(source) not in list(hydra_plugins.__path__):
        hydra_plugins.__path__.append(str(source))


def task(cfg):
    """Hydra's task function: the run itself (mmrepro/train.py, imported only now)."""
    from mmrepro.train import train

    return train(cfg)
