"""python -m mmrepro.tables <table id> --variant <variant> [--runs-dir runs] [--results-dir results] [--chosen]"""

import argparse
import sys
from pathlib import Path

from mmrepro.tables.build import build_table, chosen_value, specs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mmrepro.tables", description=__doc__)
    parser.add_argument("table")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--chosen", action="store_true",
                        help="print the value the table's swept parameter takes on validation, write nothing")
    args = parser.parse_args()
    known = specs()
    if args.table not in known:
        print(f"mmrepro.tables: error: unknown table {args.table!r}; valid: {', '.join(sorted(known))}", file=sys.stderr)
        sys.exit(2)
    if args.chosen:
        value = chosen_value(args.table, args.variant, args.runs_dir)
        if value is None:
            print(f"mmrepro.tables: error: no value of table {args.table!r} ({args.variant}) was chosen on validation "
                  f"from the records under {args.runs_dir}/", file=sys.stderr)
            sys.exit(2)
        print(value)
        return
    path = build_table(args.table, args.variant, args.runs_dir, args.results_dir)
    print(f"mmrepro.tables: wrote {path}")


if __name__ == "__main__":
    main()
