"""python -m mmrepro.tables <table id> --variant <variant> [--runs-dir runs] [--results-dir results]"""

import argparse
import sys
from pathlib import Path

from mmrepro.tables.build import build_table, specs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mmrepro.tables", description=__doc__)
    parser.add_argument("table")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    args = parser.parse_args()
    known = specs()
    if args.table not in known:
        print(f"mmrepro.tables: error: unknown table {args.table!r}; valid: {', '.join(sorted(known))}", file=sys.stderr)
        sys.exit(2)
    path = build_table(args.table, args.variant, args.runs_dir, args.results_dir)
    print(f"mmrepro.tables: wrote {path}")


if __name__ == "__main__":
    main()
