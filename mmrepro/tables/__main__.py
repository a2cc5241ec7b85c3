"""mmrepro-tables <table id> --variant <variant> [--runs-dir runs] [--results-dir results] [--chosen]
mmrepro-tables --list: every table, its variants, and whether its file in results/ holds measurements.
(python -m mmrepro.tables works the same.)"""

import argparse
import sys
from pathlib import Path

from mmrepro.tables.build import build_table, chosen_value, specs


def main() -> None:
    parser = argparse.ArgumentParser(prog="mmrepro-tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?")
    parser.add_argument("--variant")
    parser.add_argument("--list", action="store_true", help="list every table and variant with its status, write nothing")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--chosen", action="store_true",
                        help="print the value the table's swept parameter takes on validation, write nothing")
    args = parser.parse_args()
    known = specs()
    if args.list:
        print(listing(known, args.results_dir))
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
    path = build_table(args.table, args.variant, args.runs_dir, args.results_dir)
    print(f"mmrepro-tables: wrote {path}")


def fail(message: str) -> None:
    print(f"mmrepro-tables: error: {message}", file=sys.stderr)
    sys.exit(2)


def status(path: Path) -> str:
    """measured (every row ran), partly measured, not run, or not written (no file yet)."""
    if not path.exists():
        return "not written"
    text = path.read_text()
    ran = text.count("| ok |")
    missing = sum("not run" in line for line in text.splitlines() if line.startswith("| "))
    return ("measured" if not missing else "partly measured") if ran else "not run"


def listing(known: dict, results_dir: Path) -> str:
    rows = []
    for table, spec in known.items():
        for variant, target in spec.get("make_target", {}).items():
            path = results_dir / spec["paper"] / f"{spec['file']}_{variant}.md"
            rows.append(f"{table:22} {variant:16} {status(path):16} {path}  (make {target})")
    return "\n".join([f"{'table':22} {'variant':16} {'status':16} file  (regenerate)", *rows])


if __name__ == "__main__":
    main()
