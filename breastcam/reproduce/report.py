"""Assemble an experiment's report: comparison table, figures, deviations, provenance.

The page itself is :func:`breastcam.report.write_report`; this module chooses what goes in it.
The comparison is :func:`breastcam.report.comparison_table` plus two columns for repeated runs
(``std`` and ``runs``), and is also written as ``comparison.csv`` / ``reproduced.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from breastcam.report import comparison_table, package_versions, published_for, write_report
from breastcam.evaluate.paper_metrics import PAPER_DEFINITIONS, paper_definition, parse_definition
from breastcam.report.metric_solver import CLASSES
from breastcam.report.verdicts import inconsistent_keys
from breastcam.report.tables import KEY, normalise_subset

# The deviations every experiment of a paper has, whatever mode it runs in, are data:
# experiments/<paper>/deviations.yaml, rendered by breastcam.report.write_report.
PAPER_DEVIATIONS: dict[str, list[str]] = {}


def published_rows(experiment: Mapping, notes: list[str]) -> pd.DataFrame:
    """The experiment's published rows; a missing CSV becomes a note, not a crash."""
    try:
        return published_for(experiment)
    except FileNotFoundError as err:
        notes.append(f"published numbers not loaded: {err}")
        return pd.DataFrame(columns=KEY + ["value"])


def comparison(published: pd.DataFrame, reproduced: pd.DataFrame,
               inconsistent: Mapping[tuple[str, str, str], str] | Sequence = ()) -> pd.DataFrame:
    """Published beside reproduced, with the repeated runs' ``std`` and ``runs`` columns."""
    if reproduced.empty and published.empty:
        return pd.DataFrame()
    rep = reproduced if not reproduced.empty else pd.DataFrame(columns=KEY + ["value"])
    table = comparison_table(published, rep, inconsistent=inconsistent)
    if not reproduced.empty and {"std", "runs"} <= set(reproduced.columns):
        extra = reproduced[KEY + ["protocol", "std", "runs"]].copy()
        extra["subset"] = extra["subset"].map(normalise_subset)
        extra["model"] = extra["model"].astype(str)
        table = table.merge(extra, on=KEY + ["protocol"], how="left")
    return table


def paper_consistency(experiment: Mapping, published: pd.DataFrame, reproduced: pd.DataFrame,
                      notes: list[str]) -> dict[tuple[str, str, str], str]:
    """The paper's metric definition, said in ``notes``; the published rows no definition fits.

    Only rows the report compares are checked; answers come from the shipped verdicts
    (:mod:`breastcam.report.verdicts`), a row missing there is solved (seconds a row).
    """
    paper = str(experiment.get("paper") or "")
    classes = {len(CLASSES[d]) for d in published.get("dataset", pd.Series(dtype=str)).unique()
               if d in CLASSES}
    for k in sorted(classes):
        name = paper_definition(paper, k)
        if name:
            notes.append(f"paper definition ({k} classes): '{name}' = {parse_definition(name).describe()}; "
                         "found by breastcam.report.metric_solver from the printed rows "
                         "(docs/METRIC_DEFINITIONS.md). Confidence intervals are those of the "
                         "compared (paper-defined) value; 'CI method' says how each was made.")
    if published.empty or reproduced.empty or paper not in PAPER_DEFINITIONS:
        return {}
    compared = {(str(d), normalise_subset(s), str(m)) for d, s, m in
                zip(reproduced["dataset"], reproduced["subset"], reproduced["model"])}
    keep = [(str(d), normalise_subset(s), str(m)) in compared for d, s, m in
            zip(published["dataset"], published["subset"], published["model"])]
    return inconsistent_keys(published[keep], paper)


def trust_table(groups: Mapping[tuple[str, str, str], Sequence[Path]]) -> pd.DataFrame:
    """One row per run: calibration before / after, conformal coverage and set size, selective
    risk, from each run's ``metrics.json`` (``trust`` block; :mod:`breastcam.evaluate.trust_report`)."""
    import json

    rows = []
    for (subset, protocol, model), dirs in groups.items():
        for run_dir in dirs:
            path = Path(run_dir) / "metrics.json"
            trust = json.loads(path.read_text()).get("trust") if path.is_file() else None
            if not trust:
                continue
            sel = trust.get("selective", {}).get("90", {})
            fmt = lambda k: "" if trust.get(k) is None else f"{trust[k]:.4f}"  # noqa: E731

            def ci(k):
                lo_hi = (trust.get("ci") or {}).get(k)
                return f"{fmt(k)} [{lo_hi[0]:.4f}, {lo_hi[1]:.4f}]" if lo_hi and trust.get(k) is not None else fmt(k)

            rows.append({
                "subset": subset, "protocol": protocol, "model": model, "run": Path(run_dir).name,
                "calibration": (f"temperature {trust['temperature']:.3f}" if trust.get("temperature") is not None
                                else "vector scaling" if trust.get("vector") else ""),
                "ECE before": ci("ece_before") if "ece_before" in trust else "", "ECE": ci("ece"),
                "NLL before": ci("nll_before") if "nll_before" in trust else "", "NLL": ci("nll"),
                "coverage (1 - alpha)": (f"{ci('coverage')} ({1 - trust['alpha']:.2f})" if "coverage" in trust else ""),
                "mean set size": ci("mean_set_size") if "mean_set_size" in trust else "",
                "AURC": ci("aurc"), "E-AURC": ci("e_aurc"),
                "accuracy at 90 % coverage": "" if sel.get("accuracy") is None else f"{sel['accuracy']:.4f}",
            })
    return pd.DataFrame(rows)


def ensemble_table(groups: Mapping[tuple[str, str, str], Sequence[Path]], folder: Path,
                   notes: list[str]) -> pd.DataFrame:
    """One row per (subset, protocol, model) with two or more runs on the same test images (seeds):
    the deep ensemble of their served probabilities (:mod:`breastcam.evaluate.ensemble`) beside
    the members' mean. Its predictions go to ``<folder>/ensembles/<subset>-<protocol>-<model>.csv``;
    runs on different test images (folds) get a note instead."""
    from breastcam.errors import DataError
    from breastcam.evaluate.ensemble import ensemble_frame, ensemble_metrics

    rows = []
    for (subset, protocol, model), dirs in groups.items():
        found = [Path(d) for d in dirs if (Path(d) / "predictions.csv").is_file()]
        if len(found) < 2:
            continue
        members = [pd.read_csv(d / "predictions.csv") for d in found]
        try:
            frame = ensemble_frame(members, [str(d) for d in found])
        except DataError as err:
            notes.append(f"{subset} / {protocol} / {model}: no deep ensemble: {err}")
            continue
        out = Path(folder) / "ensembles" / f"{subset}-{protocol}-{model}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False, lineterminator="\n")
        m = ensemble_metrics(frame, members)

        def ci(k):
            lo, hi = m["ci"][k]
            return f"{m[k]:.4f} [{lo:.4f}, {hi:.4f}]"

        rows.append({
            "subset": subset, "protocol": protocol, "model": model, "members": m["members"],
            "accuracy": ci("accuracy"), "accuracy (members' mean)": f"{m['members_mean']['accuracy']:.4f}",
            "ECE": ci("ece"), "ECE (members' mean)": f"{m['members_mean']['ece']:.4f}",
            "NLL": ci("nll"), "NLL (members' mean)": f"{m['members_mean']['nll']:.4f}",
            "AURC": ci("aurc"), "AURC (members' mean)": f"{m['members_mean']['aurc']:.4f}",
            "epistemic (nats)": f"{m['epistemic']:.4f}", "aleatoric (nats)": f"{m['aleatoric']:.4f}",
            "predictions": str(out.relative_to(folder)),
        })
    return pd.DataFrame(rows)


def run_figures(groups: Mapping[tuple[str, str, str], Sequence[Path]],
                aggregates: Mapping[tuple[str, str, str], Path]) -> list[tuple[str, Path]]:
    """Confusion matrix, ROC and training curves per (subset, protocol, model)."""
    figures = []
    for (subset, protocol, model), dirs in groups.items():
        first = Path(dirs[0])
        where = f"{model}, {subset}, protocol {protocol}"
        first_name = f" ({first.name})" if len(dirs) > 1 else ""
        for file, what in (("confusion_matrix.png", "Confusion matrix"), ("roc.png", "ROC"),
                           ("risk_coverage.png", "Risk-coverage (selective prediction)")):
            if (first / file).is_file():
                figures.append((f"{what}: {where}{first_name}", first / file))
        agg = aggregates.get((subset, protocol, model))
        if agg is not None and (agg / "curves.png").is_file():
            figures.append((f"Training curves, mean ± std over {len(dirs)} runs: {where}",
                            agg / "curves.png"))
        elif (first / "curves.png").is_file():
            figures.append((f"Training curves: {where}", first / "curves.png"))
    return figures


def beside(experiment: Mapping, out_dir: Path) -> list[tuple[str, pd.DataFrame | None, str]]:
    """``(title, reproduced rows or None, text)`` of each experiment listed in ``beside``.

    An extension (breastcam's task beside the paper's, e.g. CDD-CESM normal vs abnormal) is its
    own experiment with its own runs; its ``reproduced.csv`` is read from the sibling folder of
    the same ``--out``. Not run there: the text says how to run it.
    """
    from breastcam.report import load_experiment

    out = []
    for name in experiment.get("beside") or []:
        other = load_experiment(name)
        path = Path(out_dir).parent / name / "reproduced.csv"
        if not path.is_file():
            out.append((f"{name}: {other['title']}", None,
                        f"not run in this folder ({path} is missing): run `breastcam reproduce "
                        f"{name} --data-dir DATA --out {Path(out_dir).parent}`, then collect "
                        f"this report again (`breastcam reproduce {experiment['name']} --collect`)."))
            continue
        rows = pd.read_csv(path, dtype={"subset": str})
        keep = [c for c in ("subset", "protocol", "model", "metric", "value", "ci_low", "ci_high",
                            "runs") if c in rows.columns]
        out.append((f"{name}: {other['title']}", rows[keep],
                    f"breastcam's extension, not a number of the paper; from {path}."))
    return out


def assemble(
    out_dir: Path,
    *,
    experiment: Mapping,
    reproduced: pd.DataFrame,
    figures: Sequence[tuple[str, Path]] = (),
    config: Mapping | None = None,
    hashes: Mapping[str, str] | None = None,
    deviations: Sequence[str] = (),
    notes: Sequence[str] = (),
    failures: Sequence[tuple[str, str]] = (),
    published: pd.DataFrame | None = None,
    trust: pd.DataFrame | None = None,
    ensembles: pd.DataFrame | None = None,
) -> Path:
    """Write ``reproduced.csv``, ``comparison.csv`` and the report; returns ``index.html``."""
    notes = list(notes)
    out_dir.mkdir(parents=True, exist_ok=True)
    if published is None:
        published = published_rows(experiment, notes)
    inconsistent = paper_consistency(experiment, published, reproduced, notes)
    table = comparison(published, reproduced, inconsistent)
    reproduced.to_csv(out_dir / "reproduced.csv", index=False, lineterminator="\n")
    table.to_csv(out_dir / "comparison.csv", index=False, lineterminator="\n")
    devs = list(PAPER_DEVIATIONS.get(str(experiment.get("paper")), [])) + list(deviations)
    notes += [f"run failed: {run}: {error}" for run, error in failures]
    return write_report(
        out_dir, title=f"{experiment['name']}: {experiment['title']}", experiment=experiment,
        comparison=table, figures=list(figures), config=config or {}, manifest_sha256=hashes or {},
        versions=package_versions(), deviations=list(dict.fromkeys(devs)),
        notes=list(dict.fromkeys(notes)), trust=trust, ensembles=ensembles,
        beside=beside(experiment, out_dir),
    )
