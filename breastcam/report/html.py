"""One experiment's report: ``index.html`` (self-contained) and ``report.md`` in one folder.

The HTML page embeds its figures as base64 ``data:`` URIs and carries its own CSS, so the file
alone can be mailed or archived; ``report.md`` says the same with the figures referenced by
relative path (figures outside the folder are copied into ``figures/``).
"""

from __future__ import annotations

import base64
import html
import math
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from breastcam.errors import ConfigError, MissingFileError
from breastcam.report.deviations import deviations_for
from breastcam.report.tables import COMPARISON_COLUMNS, format_cell, to_markdown

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
         ".gif": "image/gif"}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 72em; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; white-space: nowrap; }
th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
td.in-ci { background: #e3f4e1 !important; }
td.out-ci { background: #fdf0d5 !important; }
td.inconsistent { color: #a00000; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #555; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: .8em; overflow-x: auto; }
.deviations li { color: #8a4b00; }
table.paper-deviations td { white-space: normal; vertical-align: top; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
div.scroll { overflow-x: auto; max-width: 100%; }
"""

_DISPLAY_NAMES = {"ci": "95% CI", "published_in_ci": "published in CI",
                  "reproduced": "reproduced (breastcam definition)",
                  "paper_definition": "reproduced (paper definition)", "ci_method": "CI method",
                  "paper_check": "paper check"}
_DEVIATION_COLUMNS = {"what": "what", "paper": "the paper says", "section": "where", "breastcam": "breastcam does",
                      "reason": "why", "source": "set in"}


ENSEMBLE_TEXT = (
    "The runs of a row that differ only by seed predicted the same test images: their probabilities "
    "averaged image by image (a deep ensemble, Lakshminarayanan et al. 2017), beside the members' "
    "mean of each measure. The ensemble's entropy splits into the members' mean entropy (aleatoric) "
    "and their disagreement, the mutual information (epistemic), in nats, averaged over the images."
)
TRUST_TEXT = (
    "breastcam's extension, beyond the papers: each run's temperature (Guo et al. 2017) and "
    "split-conformal threshold (LAC, alpha 0.1; Angelopoulos & Bates) are fitted on disjoint halves "
    "of its validation split (`breastcam calibrate`; runs with fewer than 8 validation images stay "
    "uncalibrated), then measured on the test split: calibration error before and after, how often "
    "the prediction set holds the true class and its mean size, and selective prediction (area under "
    "the risk-coverage curve and its excess over the best order; accuracy on the 90 % most confident "
    "images). 95 % percentile-bootstrap intervals over the test images."
)


def _paper_deviations(experiment: Mapping) -> pd.DataFrame:
    """The paper's deviations that concern this experiment (experiments/<paper>/deviations.yaml)."""
    rows = deviations_for(experiment)
    return pd.DataFrame(rows, columns=list(_DEVIATION_COLUMNS)).rename(columns=_DEVIATION_COLUMNS)


def _plain(obj: Any) -> Any:
    """A YAML-safe copy: tuples to lists, paths and unknown objects to text, numpy to Python."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def config_yaml(config: Mapping) -> str:
    """The exact config as YAML text (key order kept)."""
    return yaml.safe_dump(_plain(config), sort_keys=False, default_flow_style=False)


def display_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The comparison as shown: CI bounds joined into one column, all-empty columns dropped."""
    df = comparison.copy()
    if {"ci_low", "ci_high"} <= set(df.columns):
        def interval(row) -> str:
            lo, hi = row["ci_low"], row["ci_high"]
            if pd.isna(lo) or pd.isna(hi):
                return ""
            return f"[{format_cell(float(lo))}, {format_cell(float(hi))}]"

        df.insert(list(df.columns).index("ci_low"), "ci", df.apply(interval, axis=1)
                  if len(df) else pd.Series(dtype=str))
        df = df.drop(columns=["ci_low", "ci_high"])
    keep = []
    for col in df.columns:
        values = df[col]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if not empty.all():
            keep.append(col)
    return df[keep]


def sections(shown: pd.DataFrame, subset_name: str = "subset") -> list[tuple[str, pd.DataFrame]]:
    """Split a shown comparison into one table per (dataset, subset), in order of appearance.

    Headings read ``breakhis, magnification 40`` (``subset_name`` names the subset column's
    meaning) or just ``bach`` for a whole dataset; the two columns leave the sub-tables.
    """
    if not {"dataset", "subset"} <= set(shown.columns) or shown.empty:
        return [("", shown)]
    out = []
    for (dataset, subset), part in shown.groupby(["dataset", "subset"], sort=False):
        heading = str(dataset) if subset == "all" else f"{dataset}, {subset_name} {subset}"
        out.append((heading, part.drop(columns=["dataset", "subset"]).reset_index(drop=True)))
    return out


def _cell_html(col: str, value: Any) -> str:
    text = html.escape(format_cell(value))
    classes = []
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        classes.append("num")
    if col == "published_in_ci" and value is not pd.NA and value is not None and not (
            isinstance(value, float) and math.isnan(value)):
        classes.append("in-ci" if bool(value) else "out-ci")
    if col == "paper_check" and value:
        classes.append("inconsistent")
    attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{attr}>{text}</td>"


def table_html(df: pd.DataFrame) -> str:
    """An HTML ``<table>`` of ``df`` (cells escaped, numbers right-aligned), in a box that scrolls
    sideways when the table is wider than the page (a wide comparison is read, not cut off)."""
    head = "".join(f"<th>{html.escape(_DISPLAY_NAMES.get(str(c), str(c)))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False, name=None):
        body.append("<tr>" + "".join(_cell_html(str(c), v) for c, v in zip(df.columns, row)) + "</tr>")
    return (f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(body)
            + "\n</tbody>\n</table></div>")


def _data_uri(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ConfigError(f"figure {path}: unsupported image type {path.suffix!r}; use one of "
                         f"{sorted(_MIME)}")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure_paths(out_dir: Path, figures: Sequence[tuple[str, str | Path]]) -> list[tuple[str, Path, str]]:
    """(caption, absolute path, path relative to out_dir); copies outside figures into figures/."""
    placed, used = [], set()
    for caption, raw in figures:
        path = Path(raw).resolve()
        if not path.is_file():
            raise MissingFileError(f"figure {raw} (caption {caption!r}) not found")
        try:
            rel = path.relative_to(out_dir.resolve()).as_posix()
        except ValueError:
            target = out_dir / "figures" / path.name
            stem, n = path.stem, 1
            while target.name in used or (target.exists() and target.read_bytes() != path.read_bytes()):
                target = out_dir / "figures" / f"{stem}_{n}{path.suffix}"
                n += 1
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            rel = target.relative_to(out_dir).as_posix()
        used.add(Path(rel).name)
        placed.append((caption, path, rel))
    return placed


def _experiment_items(experiment: Mapping) -> list[tuple[str, str]]:
    items = []
    for key in ("name", "paper", "title", "dataset", "protocols", "models", "published", "path"):
        if key in experiment and experiment[key] not in (None, "", [], {}):
            value = experiment[key]
            items.append((key, ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)))
    return items


def _kv_frame(mapping: Mapping, key: str, value: str) -> pd.DataFrame:
    return pd.DataFrame({key: list(map(str, mapping)),
                         value: ["" if v is None else str(v) for v in mapping.values()]})


def write_report(
    out_dir: str | Path,
    *,
    title: str,
    experiment: Mapping,
    comparison: pd.DataFrame,
    figures: Sequence[tuple[str, str | Path]] = (),
    config: Mapping | None = None,
    manifest_sha256: Mapping[str, str] | None = None,
    versions: Mapping[str, str | None] | None = None,
    deviations: Sequence[str] = (),
    notes: Sequence[str] = (),
    trust: pd.DataFrame | None = None,
    beside: Sequence[tuple[str, pd.DataFrame | None, str]] = (),
    ensembles: pd.DataFrame | None = None,
) -> Path:
    """Write ``index.html`` and ``report.md`` of one experiment into ``out_dir``; returns the HTML path.

    ``comparison`` is usually :func:`breastcam.report.tables.comparison_table`'s output (any
    DataFrame renders). ``figures`` are ``(caption, image path)`` pairs. ``deviations`` are the
    ways the run differs from the paper's protocol (shown before the results); ``notes`` anything
    else worth saying. ``manifest_sha256`` maps each data manifest / split file to its hash.
    ``beside`` holds ``(title, rows or None, text)`` of extensions shown beside the paper;
    ``ensembles`` the deep-ensemble rows of runs that share a test set.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    placed = _figure_paths(out, figures)
    shown = display_table(comparison) if set(COMPARISON_COLUMNS) <= set(comparison.columns) else comparison
    subsets = experiment.get("subsets") or {}
    groups = sections(shown, str(subsets.get("by", "subset"))) if len(shown) else []
    config_text = config_yaml(config or {})
    meta = _experiment_items(experiment)
    versions_df = _kv_frame(versions or {}, "package", "version")
    hashes_df = _kv_frame(manifest_sha256 or {}, "file", "sha256")
    esc = html.escape

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
        '<dl class="meta">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in meta) + "</dl>",
        "<h2>Deviations from the paper</h2>",
    ]
    paper_devs = _paper_deviations(experiment)
    if len(paper_devs):
        parts.append(table_html(paper_devs).replace("<table", '<table class="paper-deviations"', 1))
    if deviations:
        parts.append("<p>This run:</p>" if len(paper_devs) else "")
        parts.append('<ul class="deviations">' + "".join(f"<li>{esc(d)}</li>" for d in deviations) + "</ul>")
    elif not len(paper_devs):
        parts.append("<p>None recorded.</p>")
    trust_parts = []
    if trust is not None and len(trust):
        trust_parts = ["<h2>Trust in the prediction</h2>", f"<p>{esc(TRUST_TEXT)}</p>",
                       table_html(trust)]
    if ensembles is not None and len(ensembles):
        if not trust_parts:
            trust_parts = ["<h2>Trust in the prediction</h2>"]
        trust_parts += ["<h3>Deep ensembles</h3>", f"<p>{esc(ENSEMBLE_TEXT)}</p>", table_html(ensembles)]
    parts.append("<h2>Published vs reproduced</h2>")
    if not len(shown):
        parts.append("<p>No rows.</p>")
    for heading, part in groups:
        if heading:
            parts.append(f"<h3>{esc(heading)}</h3>")
        parts.append(table_html(part))
    for heading, rows, text in beside:
        parts += [f"<h2>Beside the paper: {esc(heading)}</h2>", f"<p>{esc(text)}</p>"]
        if rows is not None:
            parts.append(table_html(rows))
    parts += trust_parts
    if placed:
        parts.append("<h2>Figures</h2>")
        for caption, path, _ in placed:
            parts.append(f'<figure><img src="{_data_uri(path)}" alt="{esc(caption)}">'
                         f"<figcaption>{esc(caption)}</figcaption></figure>")
    if notes:
        parts += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"]
    parts += ["<h2>Provenance</h2>", "<h3>Package versions</h3>", table_html(versions_df),
              "<h3>Data manifests (sha256)</h3>",
              table_html(hashes_df) if len(hashes_df) else "<p>None recorded.</p>",
              "<h2>Configuration</h2>", f"<pre>{esc(config_text)}</pre>", "</body>", "</html>", ""]
    html_path = out / "index.html"
    html_path.write_text("\n".join(parts), encoding="utf-8")

    md = [f"# {title}", ""]
    md += [f"- **{k}**: {v}" for k, v in meta] + ["", "## Deviations from the paper", ""]
    if len(paper_devs):
        md.append(to_markdown(paper_devs))
    md += (["This run:", ""] if len(paper_devs) and deviations else []) + [f"- {d}" for d in deviations]
    if not deviations and not len(paper_devs):
        md.append("None recorded.")
    md += ["", "## Published vs reproduced", ""]
    if not len(shown):
        md.append("No rows.\n")
    for heading, part in groups:
        if heading:
            md += [f"### {heading}", ""]
        md.append(to_markdown(part.rename(columns=_DISPLAY_NAMES)))
    for heading, rows, text in beside:
        md += [f"## Beside the paper: {heading}", "", text, ""]
        if rows is not None:
            md += [to_markdown(rows), ""]
    if trust is not None and len(trust):
        md += ["## Trust in the prediction", "", TRUST_TEXT, "", to_markdown(trust)]
    if ensembles is not None and len(ensembles):
        md += ([] if trust is not None and len(trust) else ["## Trust in the prediction"])
        md += ["", "### Deep ensembles", "", ENSEMBLE_TEXT, "", to_markdown(ensembles)]
    if placed:
        md += ["## Figures", ""]
        for caption, _, rel in placed:
            md += [f"![{caption}]({rel})", "", f"*{caption}*", ""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    md += ["## Provenance", "", "### Package versions", "", to_markdown(versions_df),
           "### Data manifests (sha256)", ""]
    md.append(to_markdown(hashes_df) if len(hashes_df) else "None recorded.\n")
    md += ["## Configuration", "", "```yaml", config_text.rstrip("\n"), "```", ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    return html_path
