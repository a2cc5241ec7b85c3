"""Command-line overrides checked before Hydra starts: a typo or a wrong type is one line, not a
traceback, and no run directory is made for it.

- group names (experiment=foo, model=a,b): the valid names of the group;
- keys (model.lrr=1): the key must exist in the composed config (for every group choice a multirun
  sweeps), else the closest valid keys are named; `+key=` adds a key and is not checked;
- types: a value must have the type of the key's default where that default is a number or a
  boolean (trainer.max_epochs=abc, seed=abc); strings, lists, mappings and nulls are not checked.
A resumed run (resume=<dir>) is checked against the config it was started with. A multirun also
composes its base config (the command line without its sweeps) before any member: a key only the
swept experiments define must then be written ++key=value.
"""

from __future__ import annotations

import difflib
import itertools
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from mmrepro import CONFIG_DIR
from mmrepro.errors import ConfigError

GROUPS = ("dataset", "model", "trainer", "logger", "callbacks", "eval", "experiment", "sweep")
MAX_COMBINATIONS = 32


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


def check_group_overrides(argv: list[str]) -> None:
    """Unknown names in group overrides (experiment=foo, model=a,b) as one line listing valid ones."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key not in GROUPS or "(" in value or value in ("", "null"):
            continue
        options = group_options(key)
        for name in value.replace("[", ",").replace("]", ",").split(","):   # a,b or a list [a,b]
            if name and name not in options:
                raise ConfigError(key, f"unknown {key} {name!r}; valid: {', '.join(options)}")


def parse(argv: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides([a for a in argv if not a.startswith("-")])
    except Exception as e:  # noqa: BLE001 - Hydra's grammar errors: their first line is the message
        raise ConfigError("overrides", str(e).strip().splitlines()[0]) from None


def values(override) -> list:
    """The values an override sets (each value of a sweep)."""
    if not override.is_sweep_override():
        return [override.value()]
    sweep = override.value()
    if hasattr(sweep, "list"):
        return list(sweep.list)
    return []  # range / interval / glob sweeps: not checked


def check_overrides(argv: list[str], multirun: bool = False) -> None:
    """Every key=value override names an existing key and has its default's type (module docstring)."""
    check_group_overrides(argv)
    overrides = parse(argv)
    resume = next((o.value() for o in overrides if o.key_or_group == "resume"), None)
    if resume is not None and not (Path(str(resume)) / ".hydra" / "config.yaml").is_file():
        raise ConfigError("resume", f"{resume!r} is not a run directory (it has no .hydra/config.yaml); "
                          "give the directory of an earlier run, e.g. runs/<table>_<variant>/<time>-<id>")
    keyed = [o for o in overrides if o.key_or_group not in GROUPS and not o.key_or_group.startswith("hydra")
             and o.key_or_group not in ("resume",) and not o.is_add() and not o.is_force_add()]
    if not keyed:
        return
    try:
        configs = configs_to_check(overrides, resume)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - Hydra's composition errors: their first line is the message
        raise ConfigError("overrides", str(e).strip().splitlines()[0]) from None
    for cfg in configs:
        for o in keyed:
            check_key(cfg, o.key_or_group, values(o), o.is_delete())
    if multirun and resume is None:
        base = base_config(overrides)
        for o in keyed:
            if not o.is_delete() and OmegaConf.select(base, o.key_or_group, default=MISSING_KEY) is MISSING_KEY:
                raise ConfigError(o.key_or_group, "only the swept experiments define it, not the base config a "
                                  f"multirun composes first; write ++{o.input_line}")


MISSING_KEY = object()


def base_config(overrides: list) -> DictConfig:
    """The config Hydra composes before a multirun's members: the command line without its sweeps."""
    from hydra import compose, initialize_config_dir

    single = [o.input_line for o in overrides if (o.key_or_group in GROUPS or o.key_or_group.startswith("hydra"))
              and not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=single)


def configs_to_check(overrides: list, resume) -> list[DictConfig]:
    if resume is not None:
        return [OmegaConf.load(Path(str(resume)) / ".hydra" / "config.yaml")]
    from hydra import compose, initialize_config_dir

    groups = {o.key_or_group: [str(v) for v in values(o)] for o in overrides if o.key_or_group in GROUPS}
    fixed = [o.input_line for o in overrides if o.key_or_group.startswith("hydra")]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        first = compose("config", overrides=fixed + [f"{g}={v[0]}" for g, v in groups.items() if v],
                        return_hydra_config=True)
        for key, value in (first.hydra.sweeper.get("params") or {}).items():  # a sweep config's group axes
            if key in GROUPS and key not in groups:
                groups[key] = [v.strip() for v in str(value).split(",")]
        combos = list(itertools.islice(itertools.product(*groups.values()), MAX_COMBINATIONS))
        return [compose("config", overrides=fixed + [f"{g}={v}" for g, v in zip(groups, combo)]) for combo in combos]


def check_key(cfg: DictConfig, key: str, new_values: list, delete: bool) -> None:
    node, parts = cfg, key.split(".")
    for part in parts:
        if not isinstance(node, DictConfig) or part not in node:
            raise ConfigError(key, f"unknown key ({closest(cfg, key)}); a new key needs +{key}=...")
        parent, node = node, node._get_node(part)  # no interpolation is resolved
    if delete or isinstance(node, DictConfig | ListConfig) or OmegaConf.is_interpolation(parent, parts[-1]):
        return
    for v in new_values:
        check_type(key, node._value(), v)


def dotted_keys(node, prefix: str = "") -> list[str]:
    out = []
    for k in node.keys():
        path = f"{prefix}{k}"
        child = node._get_node(k)
        out.append(path)
        if isinstance(child, DictConfig):
            out += dotted_keys(child, path + ".")
    return out


def closest(cfg: DictConfig, key: str) -> str:
    """The valid keys closest to a mistyped one, among the keys of its config group (model.lrr ->
    model.optim.lr): by the last name first, then by the whole dotted name."""
    top = key.split(".")[0]
    scope = dotted_keys(cfg[top], top + ".") if top in cfg and isinstance(cfg._get_node(top), DictConfig) else dotted_keys(cfg)
    last = key.split(".")[-1]
    by_name = [k for k in scope if k.split(".")[-1] in difflib.get_close_matches(last, [k.split(".")[-1] for k in scope],
                                                                                n=3, cutoff=0.6)]
    close = by_name[:3] or difflib.get_close_matches(key, scope, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}?"
    return f"valid keys: {', '.join(k for k in scope if k.count('.') == key.count('.'))}"


def check_type(key: str, default, value) -> None:
    """Numbers and booleans only: an int default takes any number (omega: 0 takes 0.5)."""
    if value is None or default is None or isinstance(default, str):
        return
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    else:
        return
    if not ok:
        raise ConfigError(key, f"must be {kind} (default {default!r}), got {value!r}")
