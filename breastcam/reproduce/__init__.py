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
) -> Path:
    """Run experiment ``name`` on the dataset under ``data_dir``; returns the report's index.html.

    ``quick`` applies the experiment's ``quick`` block (a few images, small input, 1-2 epochs,
    random weights, fewer models): a smoke test whose splits stay under ``out_dir``. Full runs
    write their splits to ``data_manifests/<name>/`` and refuse to replace a different existing
    split unless ``force``. ``seeds`` replace the experiment's training seeds; ``models`` and
    ``protocols`` run only some of the experiment's (the report says so).
    """
    from breastcam.reproduce import special

    experiment = load_experiment(name)
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise FileNotFoundError(f"data folder {data_dir} not found: give the dataset root with "
                                "--data-dir")
    out = Path(out_dir) / experiment["name"]
    out.mkdir(parents=True, exist_ok=True)
    handler = special.HANDLERS.get(experiment["name"])
    if handler is not None:
        return handler(experiment, data_dir, out, quick=quick, seeds=seeds, force=force,
                       models=models, protocols=protocols, verbose=verbose, log=log)
    return train_and_report(experiment, data_dir, out, quick=quick, seeds=seeds, force=force,
                            models=models, protocols=protocols, verbose=verbose, log=log)


def train_and_report(experiment: dict, data_dir: Path, out: Path, *, quick: bool = False,
                     seeds: Sequence[int] | None = None, force: bool = False,
                     models: Sequence[str] | None = None, protocols: Sequence[str] | None = None,
                     verbose: int = 0, log: Callable[[str], None] = print) -> Path:
    """The usual experiment, as a study run here: plan it on disk, run every run, collect.

    The same plan, run claims and collection as ``--plan`` / ``--run`` / ``--workers`` /
    ``--collect`` (:mod:`~breastcam.reproduce.study`), so a study may be started one way and
    finished another, and every way gives the same report.
    """
    from breastcam.reproduce import gather, study as studies

    plan = studies.plan_study(experiment, data_dir, Path(out).parent, quick=quick, seeds=seeds,
                              models=models, protocols=protocols, force=force)
    log(f"{experiment['name']}: {len(plan['splits'])} split(s), {len(plan['runs'])} run(s)"
        + (" [quick]" if quick else ""))
    folder = Path(plan["out"]) / plan["name"]
    studies.run_all_here(folder, plan, verbose=verbose, log=log)
    html, _ = gather.report_study(folder, log=lambda _: None)
    return html
