"""mmrepro-data dataset=<name> [dataset.key=value ...] (or python -m mmrepro.data): what a dataset
holds (files, splits, modalities, label counts), or the one-line error saying what is missing and
where to get it."""

import sys

from hydra import compose, initialize_config_dir

from mmrepro import CONFIG_DIR
from mmrepro.errors import MmreproError
from mmrepro.overrides import check_group_overrides, group_options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip() + "\n\ndatasets: " + ", ".join(group_options("dataset")))
        return 0
    try:
        from mmrepro.train import build_datamodule

        check_group_overrides(argv)
        overrides = [a for a in argv if a.startswith("dataset")]
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        dm = build_datamodule(cfg.dataset)
        dm.setup()
        print(dm.summary())
        return 0
    except MmreproError as e:
        print(f"mmrepro: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
