"""mmrepro [experiment=<name>] [key=value ...]   |   mmrepro -m sweep=<table>   (or python -m mmrepro)

Exit status: 0 done; 2 a bad input (one line on stderr, no run directory left behind); 1 a
multirun with a failed member (its summary line names them); 128 + n a run stopped by signal n
(SIGTERM: 143, Ctrl-C: 130) after writing its checkpoint; the line says how to resume it.
torch and Lightning are imported only when a run starts, so --help and shell completion are quick."""

import sys

import hydra

from mmrepro import CONFIG_DIR
from mmrepro.errors import MmreproError
from mmrepro.launch import expose_source_plugins, launch_id, task
from mmrepro.overrides import check_overrides

HYDRA_OPTIONS_WITH_VALUES = ("-sc", "--shell-completion", "--info", "-i", "--cfg", "-c", "--package", "-p",
                             "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def resume_in_place(argv: list[str]) -> list[str]:
    """resume=<dir>: Hydra runs in <dir> itself and leaves its saved .hydra/ config as it is."""
    for arg in argv:
        if arg.startswith("resume=") and arg != "resume=null":
            run_dir = arg.split("=", 1)[1].strip("'\"")
            return argv + [f"hydra.run.dir='{run_dir}'", "hydra.output_subdir=null"]
    return argv


def overrides_of(argv: list[str]) -> list[str]:
    """argv without Hydra's own options and their values (-sc install=bash, --cfg job, ...)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in HYDRA_OPTIONS_WITH_VALUES:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def main() -> None:
    argv = sys.argv[1:]
    expose_source_plugins()  # before anything asks Hydra for its plugins
    if argv in (["--help"], ["-h"]):
        from mmrepro.usage import usage

        print(usage())
        return
    try:
        if not any(a in ("-sc", "--shell-completion") for a in argv):
            check_overrides(overrides_of(argv), multirun=any(a in ("-m", "--multirun") for a in argv))
    except MmreproError as e:
        print(f"mmrepro: error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    launch_id()  # one id for this invocation and every process it starts
    sys.argv = [sys.argv[0], *resume_in_place(argv)]
    hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")(task)()
    from mmrepro.sweeps import FAILED
    if FAILED:
        sys.exit(1)


if __name__ == "__main__":
    main()
