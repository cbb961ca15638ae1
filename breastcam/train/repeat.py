"""Repeated runs: k folds (paper B's protocol) or several seeds, one run directory each.

Each repetition is an ordinary run in ``<output_dir>/fold_<k>`` or ``<output_dir>/seed_<s>``,
so an interrupted series resumes run by run. Aggregating their metrics (mean +- std, curves
with error bars) is the evaluation layer's job (``breastcam.evaluate.aggregate_runs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from breastcam.train.config import apply_overrides, load_config
from breastcam.train.run import run


def repeat_configs(
    config: str | Path | Mapping,
    overrides: Sequence[str] = (),
    *,
    folds: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[dict]:
    """The resolved configs of the repetitions (folds x seeds), each with its own output_dir."""
    base = load_config(config, overrides)
    folds = list(folds) if folds is not None else [base["data"].get("fold")]
    seeds = list(seeds) if seeds is not None else [base["seed"]]
    out = []
    for fold in folds:
        for seed in seeds:
            parts = []
            if fold is not None:
                parts.append(f"fold_{int(fold)}")
            if len(seeds) > 1:
                parts.append(f"seed_{int(seed)}")
            sub = "_".join(parts) or "run"
            cfg = apply_overrides(
                base,
                [f"data.fold={'null' if fold is None else int(fold)}", f"seed={int(seed)}",
                 f"output_dir={Path(base['output_dir']) / sub}", f"name={base['name']}-{sub}"],
            )
            out.append(load_config(cfg))
    return out


def run_repeated(
    config: str | Path | Mapping,
    overrides: Sequence[str] = (),
    *,
    folds: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    verbose: int = 2,
) -> list[Path]:
    """Train every repetition in turn; return their run directories."""
    return [run(cfg, verbose=verbose) for cfg in repeat_configs(config, overrides, folds=folds, seeds=seeds)]
