"""Build one results table (and its figure) from run records.

Which runs: the records whose table id (the spec's `records`, else its own id) and variant match.
A row is the records whose hydra choice `row_group` equals the row's `choice` and whose config
matches the row's `where` (dotted keys, e.g. model.alpha), from the most recent sweep that ran that
row (older sweeps are superseded; single runs outside sweeps are not tabulated). A row lists the
`columns` it has (default: all); the others read "—".
Each cell: mean +- std over seeds (n = number of seeds), or "not run (k)" with reason k given once
under the table, or "record unreadable: <file>" for a run.json that cannot be read. The paper's value
stands in its own column, from paper_values.yaml. Every run record used is copied next to the
table (results/<paper>/runs/<table>_<variant>/) and linked, with its commit, data, hardware and
wall time.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import yaml

from mmrepro.errors import MmreproError
from mmrepro.records import read_records, write_json_atomic
from mmrepro.tables.departures import departures

PACKAGE = Path(__file__).resolve().parent.parent


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def specs() -> dict:
    return load_yaml(PACKAGE / "tables" / "specs.yaml")


def paper_values() -> dict:
    return load_yaml(PACKAGE / "paper_values.yaml")


def table_records(records: list[dict], table_id: str, variant: str) -> list[dict]:
    return [r for r in records if (r.get("table") or {}).get("id") == table_id
            and (r.get("table") or {}).get("variant") == variant and r.get("sweep")]


def config_value(record: dict, dotted: str):
    node = record.get("config", {})
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def row_records(records: list[dict], spec: dict, row: dict) -> list[dict]:
    """The row's records, each seed's from the latest sweep that ran that seed (sweep dirs end in a
    sortable timestamp): a rerun supersedes its seed's earlier runs, and seeds run in separate sweeps
    (a seed added later) add up. A `paper_only` row (a comparison the paper quotes from other work)
    has none."""
    if row.get("paper_only"):
        return []
    mine = [r for r in records if (r.get("choices") or {}).get(spec["row_group"]) == row["choice"]
            and all(config_value(r, k) == v for k, v in (row.get("where") or {}).items())]
    stamp = lambda r: Path(r["sweep"]["dir"]).name  # noqa: E731
    latest: dict = {}
    for r in mine:
        latest[r.get("seed")] = max(latest.get(r.get("seed"), ""), stamp(r))
    return [r for r in mine if stamp(r) == latest[r.get("seed")]]


def select_records(records: list[dict], table_id: str, variant: str) -> list[dict]:
    """Every record feeding (table_id, variant): each row's seeds, each from its latest sweep."""
    spec = specs()[table_id]
    mine = table_records(records, spec.get("records", table_id), variant)
    return [r for row in spec["rows"] for r in row_records(mine, spec, row)]


def select_on_validation(records: list[dict], param: str, metric: str, mode: str = "min",
                         by: str | None = None) -> tuple[list[dict], list]:
    """A row swept over `param` (e.g. model.omega): keep the records of the value whose mean
    validation `metric` over seeds is best (never chosen on test); with `by` (a config group, e.g.
    experiment) the value is chosen separately for each of the row's experiments. Returns (kept
    records, [(group or None, [(value, mean metric, seeds)] sorted by value, chosen value)])."""
    if by:
        groups: dict = {}
        for r in records:
            groups.setdefault(r["choices"].get(by), []).append(r)
        kept, report = [], []
        for name in sorted(groups, key=str):
            k, rep = select_on_validation(groups[name], param, metric, mode)
            kept += k
            report += [(name, scored, chosen) for _, scored, chosen in rep]
        return kept, report
    by_value: dict = {}
    for r in records:
        by_value.setdefault(config_value(r, param), []).append(r)
    scored = []
    for value, rs in by_value.items():
        ok = [r["metrics"][metric] for r in rs if r.get("status") == "ok" and metric in r.get("metrics", {})]
        scored.append((value, statistics.mean(ok) if ok else None, len(ok)))
    valid = [t for t in scored if t[1] is not None]
    if len(by_value) <= 1:
        return records, []
    if not valid:  # nothing to choose by: all failed (their cells say why), else never mix values in one cell
        return (records, []) if all(r.get("status") != "ok" for r in records) else ([], [])
    best = (min if mode == "min" else max)(valid, key=lambda t: t[1])[0]
    return by_value[best], [(None, sorted(scored, key=lambda t: (t[0] is None, t[0])), best)]


def chosen_value(table_id: str, variant: str, runs_dir: Path):
    """The value of the table's `select.param` chosen on validation for its first swept row
    (e.g. the omega an ablation then runs at), or None when nothing was chosen."""
    spec = specs()[table_id]
    if not spec.get("select"):
        return None
    mine = table_records(read_records(runs_dir), spec.get("records", table_id), variant)
    for row in spec["rows"]:
        _, report = select_on_validation(row_records(mine, spec, row), **spec["select"])
        if report:
            return report[0][2]
    return None


def selection_section(spec: dict, selection: dict) -> list[str]:
    sel = spec["select"]
    per = f", separately for each {sel['by']}" if sel.get("by") else ""
    lines = ["## Selection on validation", "", f"Rows swept over `{sel['param']}` report the value with the best mean "
             f"`{sel['metric']}` ({sel.get('mode', 'min')}) over seeds{per}; the test columns above come from those "
             "runs only.", ""]
    for row in spec["rows"]:
        for group, scored, chosen in selection.get(row_key(row)) or []:
            tried = ", ".join(f"{v}: {m:.2f} (n={n})" if m is not None else f"{v}: failed" for v, m, n in scored)
            name = md(row["label"]) + (f", {group}" if group is not None else "")
            lines.append(f"- {name}: **{sel['param']} = {chosen}**; tried {tried}")
    return lines + [""]


def row_key(row: dict) -> str:
    if row.get("id"):
        return row["id"]
    return row["choice"] + "".join(f"_{k.split('.')[-1]}{v}" for k, v in (row.get("where") or {}).items())


def unique_records(by_row: dict) -> list[dict]:
    """Every row's records, each once (rows may read the same runs: Table 3's queries)."""
    return list({r.get("_path", id(r)): r for rows in by_row.values() for r in rows}.values())


def row_metric(row: dict, column: dict) -> str:
    """A column's metric for a row: `{name}` fields filled from the row's `fill` (Table 3: one metric
    per query and number of passes)."""
    return column["metric"].format(**row["fill"]) if row.get("fill") else column["metric"]


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f} (n=1)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"


def cell(records: list[dict], metric: str, not_run: str, reasons: dict[str, int]) -> str:
    """A results cell. reasons numbers each distinct reason a cell was not run (said once, under the
    table); an unreadable record is named in the cell it belongs to, never replaced by another's error."""
    ok = [r["metrics"][metric] for r in records if r.get("status") == "ok" and metric in r.get("metrics", {})]
    failed = [r for r in records if r.get("status") in ("failed", "interrupted")]
    unreadable = [r for r in records if r.get("status") == "unreadable"]
    if ok:
        notes = [f"{n} seed(s) {status}" for status in ("failed", "interrupted")
                 if (n := sum(r.get("status") == status for r in failed))]
        notes += [f"record unreadable: {r['_path']}" for r in unreadable]
        return fmt(ok) + (f" ({'; '.join(notes)})" if notes else "")
    if unreadable:
        return f"record unreadable: {unreadable[0]['_path']}"
    reason = failed[0]["error"] if failed else not_run
    return f"not run ({reasons.setdefault(reason, len(reasons) + 1)})"


def build_table(table_id: str, variant: str, runs_dir: Path, results_dir: Path) -> Path:
    spec = specs()[table_id]
    paper = paper_values().get(table_id, {})
    mine = table_records(read_records(runs_dir), spec.get("records", table_id), variant)
    by_row = {row_key(row): row_records(mine, spec, row) for row in spec["rows"]}
    swept = unique_records(by_row)   # every run behind the table, before any selection
    selection = {}
    if spec.get("select"):
        for key, rows in by_row.items():
            by_row[key], selection[key] = select_on_validation(rows, **spec["select"])
    records = unique_records(by_row)
    target = spec.get("make_target", {}).get(variant, f"table-{table_id}")
    no_run = f"no run record for variant '{variant}' under {runs_dir}/ (run `make {target}`)"
    out_dir = results_dir / spec["paper"]
    name = f"{spec['file']}_{variant}"

    copies = out_dir / "runs" / name
    if not mine and any(copies.glob("*.json")):
        raise MmreproError(f"no run record of table {table_id!r} ({variant}) under {runs_dir}/, but "
                           f"{out_dir / name}.md holds measured runs ({copies}/): kept; run `make {target}` to "
                           f"regenerate it, or delete {copies}/ to write it as not run")
    shutil.rmtree(copies, ignore_errors=True)
    linked, seen = [], set()
    for row in spec["rows"]:
        for r in sorted(by_row[row_key(row)], key=lambda r: r["seed"] if isinstance(r.get("seed"), int) else -1):
            if r.get("_path") in seen:   # rows that read the same runs (Table 3's queries) list each once
                continue
            seen.add(r.get("_path"))
            path = copies / f"{row_key(row)}_seed{r.get('seed')}.json"
            write_json_atomic(path, {k: v for k, v in r.items() if not k.startswith("_")})
            linked.append((row, r, path.relative_to(out_dir)))

    lines = [f"# {spec['title']}", "", f"Variant **{variant}**. Generated by `python -m mmrepro.tables {table_id} "
             f"--variant {variant}` from run records; regenerate with `make {target}`.", ""]
    lines += data_section(records, paper, spec, swept)
    if spec.get("columns"):
        lines += results_section(spec, paper, by_row, no_run)
    if selection:
        lines += selection_section(spec, selection)
    if spec.get("paired_tests"):
        lines += paired_section(spec, by_row)
    if spec.get("claims"):
        from mmrepro.tables.claims import claims_section
        lines += claims_section(spec, by_row, labelled(spec))
    if spec.get("convergence"):
        lines += convergence_section(spec, by_row)
    for figure in spec.get("figures", []):
        png = build_figure(figure, spec, variant, by_row, out_dir)
        if png:
            which = "Every seed's run." if figure.get("source") == "records" else "Lowest seed of each model."
            lines += [f"![{figure['title']}]({png.name})", "", f"{figure['title']} ({png.name}): {figure['caption']} "
                      f"{which}", ""]
        elif figure.get("source") == "records":
            lines += [f"{figure['title']}: not drawn: no finished run recorded a `{figure['metric']}` curve.", ""]
        else:
            lines += [f"{figure['title']}: not drawn: no finished run saved its figure data.", ""]
    lines += provenance_section(linked)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def md(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|")


def results_section(spec: dict, paper: dict, by_row: dict, no_run: str) -> list[str]:
    header = ["Model"] + [md(f"{c['label']}: {h}") for c in spec["columns"] for h in ("paper", "ours")]
    lines = ["## Results", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    reasons: dict[str, int] = {}
    rows = []
    for row in spec["rows"]:
        values = paper.get("values", {}).get(row.get("paper_key"), {})
        cells = [md(row["label"] + (" (paper only)" if row.get("paper_only") else ""))]
        for c in spec["columns"]:
            if c["metric"] not in row.get("columns", [c["metric"] for c in spec["columns"]]):
                cells += ["—", "—"]
                continue
            metric = row_metric(row, c)
            cells.append(f"{values[metric]:g}" if metric in values else "—")
            cells.append("—" if row.get("paper_only") else md(cell(by_row[row_key(row)], metric, no_run, reasons)))
        rows.append(cells)
    # Nothing ran, for one reason: say it once, above the table, and leave the cells empty.
    nothing = len(reasons) == 1 and all(c in ("—", "not run (1)") for cells in rows for c in cells[2::2])
    if nothing:
        lines[2:2] = [f"**Not run:** {next(iter(reasons))}. Every cell of ours is —.", ""]
        rows = [[("—" if c == "not run (1)" else c) for c in cells] for cells in rows]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    lines += ["", f"Paper column: {paper.get('source', 'no paper value recorded')} ({paper.get('data', '')}). "
              f"Ours: {spec.get('aggregate', 'mean ± sample std over seeds; n = seeds that finished')}. "
              "—: the model does not define this quantity" + (", or (ours) it was not run." if nothing else "."), ""]
    if reasons and not nothing:
        lines += ["Not run:", ""] + [f"- ({k}) {reason}" for reason, k in reasons.items()] + [""]
    if any(row.get("paper_only") for row in spec["rows"]):
        lines += ["(paper only): a comparison the paper quotes from other work; mmrepro does not train it, so its "
                  "ours cells stay empty.", ""]
    return lines


def data_section(records: list[dict], paper: dict, spec: dict, swept: list[dict] = ()) -> list[str]:
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        return ["## Data", "", "No finished run: no data was read.", ""]
    data = ok[0]["data"]
    batch = config_value(ok[0], "dataset.batch_size")
    epochs = sorted({r["training"].get("epochs") for r in ok if isinstance(r["training"].get("epochs"), int)})
    lines = ["## Data and training", "",
             f"- dataset: `{data.get('dataset')}`; split sizes {data.get('split_sizes')}"
             + (f"; **{data['note']}**" if data.get("note") else ""),
             f"- paper's data: {paper.get('data', '?')}" + same_data_warning(data),
             f"- epochs: {', '.join(map(str, epochs))}; batch size {batch}"
             + "".join(f"; {k} {described(ok, k)}" for k in spec.get("describe", [])),
             "- source files (sha256): " + "; ".join(f"`{Path(p).name}` {h[:16]}…"
                                                      for p, h in (data.get("source_files") or {}).items())]
    exempt = {k for row in spec["rows"] for k in (row.get("where") or {})} | {(spec.get("select") or {}).get("param")}
    changed = departures(ok, exempt)
    lines.append("- settings that depart from the experiments' defaults: "
                 + ("; ".join(changed) if changed else "none (every run used its experiment's defaults)"))
    warned: dict[str, int] = {}
    for r in ok:
        for w in r.get("warnings") or []:
            warned[w] = warned.get(w, 0) + 1
    lines += [f"- **warning** ({n} of {len(ok)} runs): {md(w)}" for w, n in warned.items()]
    return lines + wall_time_lines(swept) + [""]


def wall_time_lines(records: list[dict]) -> list[str]:
    """The table's total wall time: every run behind it (the values a selection did not keep too)."""
    timed = [r for r in records if isinstance(r.get("wall_time_s"), (int, float))]
    if not timed:
        return []
    spans: dict = {}   # a batched group's members trained together: its time counts once, its longest member's
    for i, r in enumerate(timed):
        key = (r.get("batched") or {}).get("group") or i
        spans[key] = max(spans.get(key, 0.0), r["wall_time_s"])
    total = sum(spans.values())
    batched = f" ({len(spans)} separate trainings: stacked members counted once per group)" if len(spans) < len(timed) else ""
    return [f"- wall time: {total:.0f} s in all ({total / 60:.0f} min), summed over the {len(timed)} runs behind this "
            f"table{batched}, each as its record measured it; the provenance below lists the runs the cells use"]


def described(records: list[dict], key: str):
    """A config value for the data section; rows of different models may define different keys or
    values: each distinct value is then named with the experiments (or models) that used it."""
    seen: dict = {}
    for r in records:
        v = config_value(r, key)
        if v is not None:
            name = r["choices"].get("experiment") or r["choices"].get("model")
            seen.setdefault(json.dumps(v), []).append(name)
    if len(seen) <= 1:
        return json.loads(next(iter(seen))) if seen else None
    return "; ".join(f"{json.loads(v)} ({', '.join(sorted(set(map(str, names))))})" for v, names in seen.items())


def same_data_warning(data: dict) -> str:
    """Whether the files are the paper's (the record's data.paper_files verdict, mmrepro/data/official.py),
    said even without a dataset.note; records older than the check say that it was not made."""
    check = data.get("paper_files") or {}
    verdict, detail = check.get("verdict"), check.get("detail", "")
    compare = "compare the ordering of models, not the numbers"
    if data.get("note"):
        return f" — **ours is a subset or variant of it (see above): {compare}**" + (f" ({detail})" if detail else "")
    if verdict == "no paper data" or str(data.get("dataset")).startswith("digits"):
        return f" — **ours is different data: {compare}**"
    if verdict == "official":
        return f" — ours: the paper's files ({detail})"
    if verdict == "shapes only":
        return f" — ours: {detail}"
    if verdict == "not official":
        return f" — **ours is not the paper's files: {detail}; {compare}**"
    if verdict == "unverified":
        return f" — ours: not verified as the paper's files ({detail})"
    return " — ours: not verified as the paper's files (the run record predates the check)"


def provenance_section(linked: list) -> list[str]:
    lines = ["## Provenance", "", "| row | seed | status | commit | hardware | wall time | run record |",
             "|---|---|---|---|---|---|---|"]
    for row, r, rel in linked:
        git = r.get("git") or {}
        commit = (git.get("commit") or "?")[:10] + (" (dirty)" if git.get("dirty") else "")
        hw = (r.get("environment") or {}).get("hardware", {})
        hardware = hw.get("gpu") or f"{hw.get('cpu', '?')} ({hw.get('torch_threads', '?')} threads)"
        wall = f"{r['wall_time_s']:.0f} s" if "wall_time_s" in r else "—"
        lines.append(f"| {md(row['label'])} | {r.get('seed')} | {r.get('status')} | `{commit}` | {hardware} | {wall} | "
                     f"[run.json]({rel}) |")
    if not linked:
        lines.append("| — | — | not run | — | — | — | — |")
    return lines + [""]


def labelled(spec: dict) -> dict[str, str]:
    return {row_key(row): row["label"] for row in spec["rows"]}


def paired_section(spec: dict, by_row: dict) -> list[str]:
    """McNemar's exact test on the same test points, pooled over the seeds both rows ran (each
    run's test_predictions.npz): b = points only the first row misclassifies, c = only the second;
    two-sided p = the binomial tail of min(b, c) in b + c at 1/2."""
    from mmrepro.tables.paired import mcnemar

    names = labelled(spec)
    lines = ["## Paired tests", "", "McNemar's exact test on the same test points, pooled over the seeds both rows "
             "ran (two-sided; ‘only A wrong’ counts the points A misclassifies and B gets right).", "",
             "| A | B | seeds | only A wrong | only B wrong | p | verdict |", "|---|---|---|---|---|---|---|"]
    for a, b in spec["paired_tests"]:
        result = mcnemar(by_row.get(a, []), by_row.get(b, []))
        if result is None:
            lines.append(f"| {md(names[a])} | {md(names[b])} | — | — | — | — | not run: no seed has test predictions "
                         "from both rows |")
            continue
        seeds, only_a, only_b, p = result
        verdict = ("within seed noise (p ≥ 0.05)" if p >= 0.05 else
                   f"{'A' if only_a < only_b else 'B'} better (p < 0.05)")
        lines.append(f"| {md(names[a])} | {md(names[b])} | {', '.join(map(str, seeds))} | {only_a} | {only_b} | "
                     f"{p:.3g} | {verdict} |")
    return lines + [""]


def convergence_section(spec: dict, by_row: dict) -> list[str]:
    """Where each row's validation curve (the runs' per-epoch `curves`) stops improving."""
    from mmrepro.tables.paired import late_change, mean_curve, settled_epoch

    metric, window = spec["convergence"]["metric"], spec["convergence"].get("window", 50)
    mode = spec["convergence"].get("mode", "min")
    lines = ["## Convergence", "", f"`{metric}` from Lightning's validation loop, averaged over seeds and "
             f"smoothed by a {window}-epoch moving mean; the epoch where that curve is "
             f"{'lowest' if mode == 'min' else 'highest'} (where the row stopped improving), and how far the "
             "smoothed curve still moved over the last third of training:", ""]
    if not any(mean_curve(by_row[row_key(row)], metric)[2] for row in spec["rows"]):
        return lines[:2] + [f"No run record has a `{metric}` curve: these runs predate per-epoch validation, or "
                            "validated too rarely (`trainer.check_val_every_n_epoch`). Rerun the table's make target.", ""]
    for row in spec["rows"]:
        epochs, values, n = mean_curve(by_row[row_key(row)], metric)
        if not n:
            lines.append(f"- {md(row['label'])}: no learning curve in its run records")
            continue
        best, last = settled_epoch(epochs, values, window, mode)
        still = " — **still improving at the last epoch: not converged**" if best >= last - window // 2 else ""
        start, before, after = late_change(epochs, values, window)
        lines.append(f"- {md(row['label'])}: best at epoch {best} of {last}; from epoch {start} to {last}: "
                     f"{before:.3g} to {after:.3g} (n={n}){still}")
    return lines + [""]


def build_figure(figure: dict, spec: dict, variant: str, by_row: dict, out_dir: Path) -> Path | None:
    """One PNG from the lowest-seed finished run of each row (or of the rows the figure names); a
    figure with `source: records` reads every seed's run record instead (learning curves)."""
    from mmrepro.tables import figures

    if figure.get("source") == "records":
        series = [(row["label"], [r for r in by_row[row_key(row)] if r.get("status") == "ok" and r.get("curves")])
                  for row in spec["rows"] if "rows" not in figure or row_key(row) in figure["rows"]]
        series = [(label, rs) for label, rs in series if rs]
        if not series:
            return None
        path = out_dir / f"{figure['file']}_{variant}.png"
        getattr(figures, figure["kind"])(series, figure["metric"], path, f"{figure['title']} ({variant})",
                                         figure.get("ylabel"))
        return path
    panels = []
    for row in spec["rows"]:
        if "rows" in figure and row_key(row) not in figure["rows"]:
            continue
        ok = sorted((r for r in by_row[row_key(row)] if r.get("status") == "ok"), key=lambda r: r.get("seed", 0))
        npz = Path(ok[0]["run_dir"]) / figure["artifact"] if ok else None
        if npz is not None and npz.exists():
            panels.append((row["label"], npz))
    if not panels:
        return None
    path = out_dir / f"{figure['file']}_{variant}.png"
    getattr(figures, figure["kind"])(panels, path, f"{figure['title']} ({variant})")
    return path
