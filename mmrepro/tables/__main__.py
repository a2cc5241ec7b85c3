"""mmrepro-tables <table id> --variant <variant> [--runs-dir runs] [--results-dir results] [--chosen]
mmrepro-tables --list: every table, its variants, and whether its file in results/ holds measurements.
mmrepro-tables --index: results/README.md and results/index.csv (every table build rewrites them too).
(python -m mmrepro.tables works the same.)"""

import argparse
import sys
from pathlib import Path

from mmrepro.errors import MmreproError
from mmrepro.tables.build import build_table, chosen_value, specs
from mmrepro.tables.index import index_rows, write_index


def main() -> None:
    known = specs()
    tables = "\n".join(f"  {name:22} variants: {', '.join(spec.get('make_target', {}))}" for name, spec in known.items())
    parser = argparse.ArgumentParser(prog="mmrepro-tables", description=__doc__, epilog=f"tables:\n{tables}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?")
    parser.add_argument("--variant")
    parser.add_argument("--list", action="store_true", help="list every table and variant with its status, write nothing")
    parser.add_argument("--index", action="store_true", help="write results/README.md and results/index.csv only")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--chosen", action="store_true",
                        help="print the value the table's swept parameter takes on validation, write nothing")
    args = parser.parse_args()
    if args.list:
        print(listing(args.results_dir))
        return
    if args.index:
        print(f"mmrepro-tables: wrote {write_index(args.results_dir)}")
        return
    if args.table is None or args.table not in known:
        fail(f"unknown table {args.table!r}; valid: {', '.join(sorted(known))}" if args.table else
             "give a table (mmrepro-tables --list names them) and --variant")
    variants = list(known[args.table].get("make_target", {}))
    if args.variant not in variants:
        fail(f"table {args.table!r} has no variant {args.variant!r}; valid: {', '.join(variants)}")
    if args.chosen:
        value = chosen_value(args.table, args.variant, args.runs_dir)
        if value is None:
            fail(f"no value of table {args.table!r} ({args.variant}) was chosen on validation "
                 f"from the records under {args.runs_dir}/")
        print(value)
        return
    try:
        path = build_table(args.table, args.variant, args.runs_dir, args.results_dir)
    except MmreproError as error:
        fail(str(error))
    print(f"mmrepro-tables: wrote {path} and {write_index(args.results_dir)}")


def fail(message: str) -> None:
    print(f"mmrepro-tables: error: {message}", file=sys.stderr)
    sys.exit(2)


def listing(results_dir: Path) -> str:
    rows = [f"{r['table']:22} {r['variant']:16} {r['status']:16} {r['file']}  ({r['regenerate']})"
            for r in index_rows(results_dir)]
    return "\n".join([f"{'table':22} {'variant':16} {'status':16} file under {results_dir}/  (regenerate)", *rows])


if __name__ == "__main__":
    main()
