"""mmrepro: reproducing multimodal representation learning papers from configs."""

from pathlib import Path

__version__ = "0.1.0"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
# A regular install carries the configs as mmrepro/configs; a source checkout (editable install) has them at the top.
CONFIG_DIR = PACKAGE_DIR / "configs" if (PACKAGE_DIR / "configs").is_dir() else REPO_ROOT / "configs"
