"""python -m mmrepro [experiment=<name>] [key=value ...]   |   python -m mmrepro -m sweep=<table>

Exit status: 0 done; 2 a bad input (one line on stderr, no run directory left behind); 1 a
multirun with a failed member (its summary line names them); 128 + n a run stopped by signal n
(SIGTERM: 143, Ctrl-C: 130) after writing its checkpoint; the line says how to resume it."""

import sys

import hydra

from mmrepro import CONFIG_DIR
from mmrepro.errors import MmreproError
from mmrepro.overrides import check_overrides
from mmrepro.train import launch_id, train


def resume_in_place(argv: list[str]) -> list[str]:
    """resume=<dir>: Hydra runs in <dir> itself and leaves its saved .hydra/ config as it is."""
    for arg in argv:
        if arg.startswith("resume=") and arg != "resume=null":
            run_dir = arg.split("=", 1)[1].strip("'\"")
            return argv + [f"hydra.run.dir='{run_dir}'", "hydra.output_subdir=null"]
    return argv


def main() -> None:
    argv = sys.argv[1:]
    try:
        check_overrides(argv)
    except MmreproError as e:
        print(f"mmrepro: error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    launch_id()  # one id for this invocation and every process it starts
    sys.argv = [sys.argv[0], *resume_in_place(argv)]
    hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")(train)()
    from mmrepro.sweeps import FAILED
    if FAILED:
        sys.exit(1)


if __name__ == "__main__":
    main()
