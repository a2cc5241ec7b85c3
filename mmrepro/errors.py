"""User-facing errors. Each is one sentence a user can act on; the CLI prints it on one line and
exits with status 2. Raised where the bad value enters (config validation, data loaders)."""

from __future__ import annotations

import math
from collections.abc import Iterable

TOP_LEVEL_KEYS = ("dataset", "model", "trainer", "logger", "eval", "seed", "resume", "init_from", "table", "compile")


class MmreproError(Exception):
    """Base of every error the CLI reports as one line."""


class ConfigError(MmreproError):
    """A config value is unknown or out of range; `key` is its dotted name relative to its group."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.detail = message
        super().__init__(f"{key}: {message}")

    def under(self, group: str) -> ConfigError:
        """The same error with the key prefixed by its config group (model.lr, dataset.root ...),
        unless the key already names a top-level group."""
        if self.key.split(".")[0] in TOP_LEVEL_KEYS:
            return self
        return ConfigError(f"{group}.{self.key}", self.detail)


class DataError(MmreproError):
    """A data file is missing, truncated, corrupt or of the wrong shape/dtype."""


class TrainingDiverged(MmreproError):
    """The training loss became NaN or infinite."""


def check_range(key: str, value, lo=None, hi=None, *, lo_inclusive=True, hi_inclusive=True, integer=False):
    """Raise ConfigError unless lo <= value <= hi (bounds optional, inclusivity configurable)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok and lo is not None:
        ok = value >= lo if lo_inclusive else value > lo
    if ok and hi is not None:
        ok = value <= hi if hi_inclusive else value < hi
    if not ok:
        left = "" if lo is None else f"{lo} {'<=' if lo_inclusive else '<'} "
        right = "" if hi is None else f" {'<=' if hi_inclusive else '<'} {hi}"
        kind = "an integer" if integer else "a number"
        raise ConfigError(key, f"must be {kind} with {left}{key.split('.')[-1]}{right}, got {value!r}")
    return value


def check_choice(key: str, value, allowed: Iterable):
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(key, f"unknown value {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value
