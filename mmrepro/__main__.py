"""python -m mmrepro [experiment=<name>] [key=value ...]   |   python -m mmrepro -m sweep=<table>"""

import sys

import hydra

from mmrepro import CONFIG_DIR
from mmrepro.errors import MmreproError
from mmrepro.train import check_group_overrides, train


def main() -> None:
    try:
        check_group_overrides(sys.argv[1:])
    except MmreproError as e:
        print(f"mmrepro: error: {e}", file=sys.stderr)
        sys.exit(2)
    hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")(train)()


if __name__ == "__main__":
    main()
