"""``breastcam reproduce``: an experiment of ``experiments/<paper>/*.yaml`` -> runs -> a report.

``reproduce("dala-breakhis", "data/breakhis")`` plans the splits and runs
(:mod:`~breastcam.reproduce.plan`), makes the splits and trains / evaluates / aggregates the runs
(:mod:`~breastcam.reproduce.runner`), gathers the numbers (:mod:`~breastcam.reproduce.collect`)
and writes ``<out_dir>/<name>/index.html`` (:mod:`~breastcam.reproduce.report`). Experiments that
train nothing of their own (``dala-params``, ``dala-cam``, ``dala-data``) are in
:mod:`~breastcam.reproduce.special`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from breastcam.errors import MissingFileError
from breastcam.report import list_experiments, load_experiment

__all__ = ["list_experiments", "reproduce"]


def reproduce(
    name: str,
    data_dir: str | Path,
    *,
    quick: bool = False,
    out_dir: str | Path = "reports",
    seeds: Sequence[int] | None = None,
    force: bool = False,
    models: Sequence[str] | None = None,
    protocols: Sequence[str] | None = None,
    verbose: int = 0,
    log: Callable[[str], None] = print,
    allow_partial: bool = False,
) -> Path:
    """Run experiment ``name`` on the dataset under ``data_dir``; returns the report's index.html.

    ``quick`` applies the experiment's ``quick`` block (a few images, small input, 1-2 epochs,
    random weights, fewer models): a smoke test whose splits stay under ``out_dir``. Full runs
    write their splits to ``data_manifests/<name>/`` and refuse to replace a different existing
    split unless ``force``. ``seeds`` replace the experiment's training seeds; ``models`` and
    ``protocols`` run only some of the experiment's (the report says so). A full run on a folder
    that is not the complete release (``data_manifests/<dataset>.csv``) is refused unless
    ``allow_partial``; ``quick`` implies it (a smoke test on a sample).
    """
    from breastcam.reproduce import special

    experiment = load_experiment(name)
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise MissingFileError(f"data folder {data_dir} not found: give the dataset root with "
                                "--data-dir")
    if not (quick or allow_partial):
        from breastcam.reproduce.committed import require_complete

        require_complete(experiment, data_dir)  # refuse a partial download before any work
    out = Path(out_dir) / experiment["name"]
    out.mkdir(parents=True, exist_ok=True)
    handler = special.HANDLERS.get(experiment["name"])
    if handler is not None:
        return handler(experiment, data_dir, out, quick=quick, seeds=seeds, force=force,
                       models=models, protocols=protocols, verbose=verbose, log=log)
    return train_and_report(experiment, data_dir, out, quick=quick, seeds=seeds, force=force,
                            models=models, protocols=protocols, verbose=verbose, log=log,
                            allow_partial=allow_partial)


def check_plan_files(plan, log: Callable[[str], None] = print) -> None:
    """Pre-flight: every image the plan's splits use is checked before the first split or run
    (all bad files in one error; with ``on_bad_image: skip`` each run leaves them out itself)."""
    import pandas as pd

    from breastcam.data.preflight import preflight

    if not plan.splits:
        return
    rows = pd.concat([job.rows for job in plan.splits]).drop_duplicates("path")
    mode = plan.experiment["train"].get("on_bad_image", "raise")
    mode = mode.get("default", "raise") if isinstance(mode, dict) else mode
    _, skipped = preflight(rows, plan.data_dir, on_bad_image=mode,
                           where=f"experiment {plan.experiment['name']} under {plan.data_dir}")
    if skipped:
        log(f"{len(skipped)} unreadable image(s) will be skipped (on_bad_image: skip); each run "
            "lists them in its run_info.json")


def train_and_report(experiment: dict, data_dir: Path, out: Path, *, quick: bool = False,
                     seeds: Sequence[int] | None = None, force: bool = False,
                     models: Sequence[str] | None = None, protocols: Sequence[str] | None = None,
                     verbose: int = 0, log: Callable[[str], None] = print,
                     allow_partial: bool = False) -> Path:
    """The usual experiment: plan, execute, collect, report."""
    from breastcam.reproduce import collect, plan as planning, report, runner
    from breastcam.reproduce.committed import check_download
    from breastcam.data.manifest import write_manifest

    plan = planning.make_plan(experiment, data_dir, out_dir=out, quick=quick, seeds=seeds,
                              models=models, protocols=protocols)
    partial = check_download(experiment, plan.manifest, data_dir,
                             allow_partial=allow_partial or quick)
    if partial:
        plan.notes.append(partial)
    check_plan_files(plan, log)
    manifest_path = out / "manifest.csv"
    hashes = {runner._relative(manifest_path): write_manifest(plan.manifest, manifest_path)}
    log(f"{experiment['name']}: {len(plan.splits)} split(s), {len(plan.runs)} run(s)"
        + (" [quick]" if quick else ""))
    outcome = runner.execute(plan, force=force, verbose=verbose, log=log)
    hashes.update(outcome.hashes)
    reproduced = collect.collect(plan, outcome)
    config = {"experiment": {k: v for k, v in experiment.items() if k != "model_specs"},
              "quick": quick, "data_dir": str(data_dir),
              "run_configs": {r.model: r.config for r in plan.runs[::-1]}}
    html = report.assemble(
        out, experiment=experiment, reproduced=reproduced,
        figures=report.run_figures(outcome.groups, outcome.aggregates), config=config,
        hashes=hashes, deviations=plan.deviations, notes=plan.notes, failures=outcome.failures,
    )
    (out / "status.json").write_text(json.dumps(
        {"runs": len(plan.runs), "failed": len(outcome.failures), "report": str(html)}, indent=2))
    return html
