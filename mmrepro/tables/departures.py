"""Which settings of a table's runs depart from their experiments' defaults (fewer epochs, a shorter
warm-up, fewer test points, a reduced C grid, ...): each record's resolved config against the config
its experiment composes by itself (same config-group choices), key by key. Keys that only say where
files live, which table a run feeds or how often it checkpoints, the seed, the table's own row and
selection parameters, and keys that the record's code or today's code does not have are not departures."""

from __future__ import annotations

import functools
import json

from omegaconf import OmegaConf

from mmrepro import CONFIG_DIR

GROUPS = ("dataset", "model", "trainer", "eval")
IGNORED_TOP = {"seed", "table", "resume", "init_from", "runs_dir", "paths", "hydra", "checkpoint"}  # no effect on results
IGNORED_WORDS = ("root", "_file", "cache_dir", "enable_progress_bar", "note")


def flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


@functools.cache
def experiment_defaults(experiment: str, choices: tuple) -> dict | None:
    """The flattened config `experiment=<name>` composes with the given group choices, or None."""
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("config", overrides=[f"experiment={experiment}", *(f"{g}={c}" for g, c in choices)])
    except Exception:  # noqa: BLE001 - an experiment that no longer composes has no defaults to compare with
        return None
    return flatten(OmegaConf.to_container(cfg, resolve=False))


def ignored(key: str, exempt: set[str]) -> bool:
    return key.split(".")[0] in IGNORED_TOP or key in exempt or any(w in key.split(".")[-1] for w in IGNORED_WORDS)


def departures(records: list[dict], exempt: set[str]) -> list[str]:
    """Lines "`key`: default -> used (experiments)" over the finished records."""
    found: dict[tuple, set] = {}
    for r in records:
        exp = (r.get("choices") or {}).get("experiment")
        if r.get("status") != "ok" or not exp:
            continue
        choices = tuple((g, r["choices"][g]) for g in GROUPS if r["choices"].get(g))
        default = experiment_defaults(exp, choices)
        if default is None:
            continue
        used = flatten(r.get("config") or {})
        for key in sorted(set(used) & set(default)):  # a key only one side has is a code version, not a setting
            if ignored(key, exempt) or isinstance(default.get(key), str) and "${" in default[key]:
                continue
            if json.dumps(used.get(key)) != json.dumps(default.get(key)):
                found.setdefault((key, json.dumps(default.get(key)), json.dumps(used.get(key))), set()).add(exp)
    return [f"`{k}`: {d} → {u} ({', '.join(sorted(e))})" for (k, d, u), e in sorted(found.items())]
