"""``breastcam reproduce``: an experiment of ``experiments/<paper>/*.yaml`` -> runs -> a report.

``reproduce("dala-breakhis", "data/breakhis")`` plans the splits and runs
(:mod:`~breastcam.reproduce.plan`), makes the splits and trains / evaluates / aggregates the runs
(:mod:`~breastcam.reproduce.runner`), gathers the numbers (:mod:`~breastcam.reproduce.collect`)
and writes ``<out_dir>/<name>/index.html`` (:mod:`~breastcam.reproduce.report`). Experiments that
train nothing of their own (``dala-params``, ``dala-cam``, ``dala-data``) are in
:mod:`~breastcam.reproduce.special`.

The runs of the usual experiments go through a study on disk (:mod:`~breastcam.reproduce.study`:
``plan.json``, claimed run directories, collection from disk), so they can also be spread over
processes, GPUs and cluster nodes (``--plan``, ``--run``, ``--workers``, ``--collect``;
docs/STUDIES.md).
"""

from __future__ import annotations

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
    """The usual experiment, as a study run here: plan it on disk, run every run, collect.

    The same plan, run claims and collection as ``--plan`` / ``--run`` / ``--workers`` /
    ``--collect`` (:mod:`~breastcam.reproduce.study`), so a study may be started one way and
    finished another, and every way gives the same report.
    """
    from breastcam.reproduce import gather, study as studies

    plan = studies.plan_study(experiment, data_dir, Path(out).parent, quick=quick, seeds=seeds,
                              models=models, protocols=protocols, force=force,
                              allow_partial=allow_partial, log=log)
    log(f"{experiment['name']}: {len(plan['splits'])} split(s), {len(plan['runs'])} run(s)"
        + (" [quick]" if quick else ""))
    folder = Path(plan["out"]) / plan["name"]
    studies.run_all_here(folder, plan, verbose=verbose, log=log)
    html, _ = gather.report_study(folder, log=lambda _: None)
    return html
