"""`mmrepro --help`: what can be run, read from the config folders and the table specs without
importing torch or Lightning (so it answers in about a second)."""

from __future__ import annotations

import textwrap

import yaml

from mmrepro import PACKAGE_DIR
from mmrepro.overrides import GROUPS, group_options

HEADER = """\
mmrepro: reproduce Sohn et al. 2014, Suzuki et al. 2016 (JMVAE) and Mancisidor et al. (CMMD) from configs.

  mmrepro experiment=<name> [key=value ...]          one run (default data: the embedded 8x8 digits)
  mmrepro -m sweep=<name> [key=a,b ...]              a multirun, e.g. the sweep that fills one table
  mmrepro resume=<run dir>                           continue an interrupted run from its checkpoint
  mmrepro experiment=<name> compile=true             the training loss through torch.compile (inductor)
  mmrepro-tables <table> --variant <v>               write results/<paper>/<table>_<v>.md from run records
  mmrepro-tables --list                              every table, its variants and whether it is written
  mmrepro-data dataset=<name>                        what a dataset holds, or what is missing and where to get it

  mmrepro experiment=<name> --cfg job                print the composed config without running
  mmrepro --hydra-help                               Hydra's own options (tab completion: -sc install=bash)
"""


def wrapped(names: list[str], indent: int = 4) -> str:
    return textwrap.fill(", ".join(names), width=110, initial_indent=" " * indent, subsequent_indent=" " * indent)


def tables() -> list[str]:
    specs = yaml.safe_load((PACKAGE_DIR / "tables" / "specs.yaml").read_text())
    return [f"{name} ({', '.join(spec.get('make_target', {}))})" for name, spec in specs.items()]


def usage() -> str:
    lines = [HEADER, "Config groups (choose with <group>=<name>):"]
    for group in GROUPS:
        lines += [f"  {group}:", wrapped(group_options(group))]
    lines += ["", "Tables (variants):", wrapped(tables(), 2), "",
              "Exit status: 0 done; 2 bad input (one line on stderr); 1 a sweep member failed; "
              "128+n stopped by signal n (checkpoint written)."]
    return "\n".join(lines)
