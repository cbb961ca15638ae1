"""Which metric definition did each paper use? Test every candidate against the printed rows.

A published row (one model on one dataset / magnification, all its metric columns) is
*consistent* with a :class:`~breastcam.evaluate.paper_metrics.Definition` when some confusion
matrix reproduces every column within the rounding of its printed text (``0.883`` means
[0.8825, 0.8835]; ``95.75 %`` means [0.95745, 0.95755]). How "some matrix" is searched:

- ``integer``: two classes and a test set whose size the paper prints: every integer matrix
  (TP, TN for each plausible positive count) is enumerated; a "no" is a proof.
- ``rates``: otherwise (more classes, or sizes not printed): per-class rates with the class
  shares of the dataset, searched by L-BFGS-B from several seeded starts; a "yes" comes with its
  witness matrix, a "no" means no matrix was found.
- ``hull``: ``over_runs`` definitions (the mean of per-run values over several runs): the printed
  row must be a convex combination of single-run metric vectors (a linear programme over a grid
  of single-run matrices). Any number of runs, any weights: a weak test, a "yes" says little.
  Tested for two classes only.

:func:`solve` checks every row of the :data:`TABLE_GROUPS` (tables, and tables joined when one
paper prints two tables of the same runs); :func:`summary` counts the fits; :func:`choose`
picks each paper's definition; :func:`markdown` writes docs/METRIC_DEFINITIONS.md
(``python -m breastcam.report.metric_solver --write docs/METRIC_DEFINITIONS.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize

from breastcam.evaluate.paper_metrics import (
    Definition,
    parse_definition,
    problem_kind,
    candidate_definitions,
    definition_metrics,
)
from breastcam.report.published import load_published, load_published_text
from breastcam.report.tables import INCONSISTENT

ROW_KEY = ["dataset", "subset", "model"]
# Metrics a definition can be tested on (AUC, counts and times say nothing about it).
CHECKED = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1_minority", "f1_weighted",
           "f1_positive", "g_mean", "iba")
EPS = 1e-9  # float slack on the rounding interval


@dataclasses.dataclass(frozen=True)
class TableGroup:
    """Published tables whose rows (same dataset, subset, model) are checked together."""

    label: str
    paper: str  # letter: A, B, C
    tables: tuple[tuple[str, int], ...]  # (paper number, table number)
    drop: tuple[str, ...] = ()  # metrics left out (to see which column is the odd one)


TABLE_GROUPS = (
    TableGroup("000 Table 6 (= 001 VII)", "A", (("000", 6),)),
    TableGroup("000 Table 6 without F1", "A", (("000", 6),), ("f1_minority", "f1_weighted")),
    TableGroup("001 Table XI", "A", (("001", 11),)),
    TableGroup("001 Tables VII + XI", "A", (("000", 6), ("001", 11))),
    TableGroup("001 Tables VII + XI without F1", "A", (("000", 6), ("001", 11)),
               ("f1_minority", "f1_weighted")),
    TableGroup("001 Table II", "A", (("001", 2),)),
    TableGroup("001 Table VIII", "A", (("001", 8),)),
    TableGroup("001 Table XII", "A", (("001", 12),)),
    TableGroup("001 Tables VIII + XII", "A", (("001", 8), ("001", 12))),
    TableGroup("001 Tables VIII + XII without F1", "A", (("001", 8), ("001", 12)),
               ("f1_minority", "f1_weighted")),
    TableGroup("003 Table 1", "B", (("003", 1),)),
    TableGroup("003 Table 2", "B", (("003", 2),)),
    TableGroup("004 Table 2", "C", (("004", 2),)),
    TableGroup("004 Table 3", "C", (("004", 3),)),
)
# The multi-class groups: the rate search costs seconds per row and definition (minutes per
# row on a loaded machine), so `--multiclass` asks for them.
MULTICLASS_GROUPS = ("001 Table VIII", "001 Table XII", "001 Tables VIII + XII",
                     "001 Tables VIII + XII without F1")
# Class order of each dataset (the positive class of binary metrics is the last one).
CLASSES = {"breakhis": ("benign", "malignant"), "bach": ("Normal", "Benign", "InSitu", "Invasive"),
           "miniddsm": ("Normal", "Benign", "Cancer"), "mias": ("normal", "abnormal"),
           "cddcesm": ("normal", "abnormal")}
# Class shares of each dataset (whole set; a stratified test set keeps them). None: not known.
_SHARES = {
    "bach": ((100, 100, 100, 100), "001 Table IV: 100 images per class"),
    "miniddsm": ((500, 700, 800), "001 Table V: 500 normal, 700 benign, 800 malignant"),
    "mias": ((207, 115), "mini-MIAS Info.txt: 207 normal, 115 abnormal films"),
    "breakhis_all": ((2480, 5429), "003 Sec. 4.1: 2,480 benign, 5,429 malignant"),
    "cddcesm": (None, "not printed: the class shares are searched too"),
}


@functools.lru_cache(maxsize=None)
def _ernet_test_sizes() -> dict[str, int]:
    """``{magnification: test images}``: 003 Sec. 4.3.1's Fig. 4 totals (``003_text.csv``)."""
    text = load_published_text("003")
    sizes = text[(text["metric"] == "n_test") & (text["dataset"] == "breakhis")]
    return {str(s): int(v) for s, v in zip(sizes["subset"], sizes["value"])}


N_SLACK = 2  # test sizes searched around the printed one (one image per class of a binary split)


@dataclasses.dataclass(frozen=True)
class TestSet:
    """What is known of the test set a published row was computed on."""

    n_classes: int
    shares: tuple[float, ...] | None  # class shares (sum 1), None when unknown
    n: int | None = None  # test images, when printed
    source: str = ""

    def sizes(self, slack: int = N_SLACK) -> range:
        """The test sizes the paper's split could give: the printed total +- ``slack``.

        A split that rounds each class's share on its own (a per-class floor, say) lands up to
        one image per class away from the printed total: 001 Table VI prints 546 for BreakHis
        400X, while 30 % of each class floored is 176 + 369 = 545.
        """
        assert self.n is not None
        return range(max(2, self.n - slack), self.n + slack + 1)

    def positive_counts(self, n: int | None = None, slack: int = 3) -> range:
        """Plausible numbers of positive test images among ``n``: the stratified count +- ``slack``.

        Both papers' splits keep the class shares (6:1:3 of each class gives the printed test
        sizes); the slack covers rounding and a few images more or less per class.
        """
        assert self.shares is not None and self.n_classes == 2
        n = self.n if n is None else n
        centre = round(n * self.shares[1])
        return range(max(1, centre - slack), min(n - 1, centre + slack) + 1)

    def searched(self) -> str:
        """What the integer search covers, for a miss's wording."""
        sizes = self.sizes()
        return (f"n in [{sizes.start}, {sizes.stop - 1}] (printed {self.n} +- {N_SLACK}), positives "
                "within 3 of each n's stratified count")


@functools.lru_cache(maxsize=None)
def _breakhis_counts() -> dict[str, tuple[int, int, int]]:
    """``{magnification: (benign, malignant, test images)}`` from 000 Table 3 and 001 Table VI."""
    t3 = load_published("000", 3)
    t6 = load_published("001", 6)
    out = {}
    for sub, part in t3.groupby("subset"):
        v = dict(zip(part["metric"], part["value"]))
        n_test = t6[(t6["dataset"] == "breakhis") & (t6["subset"] == sub)
                    & (t6["metric"] == "n_test")]["value"]
        out[str(sub)] = (int(v["n_benign"]), int(v["n_malignant"]), int(n_test.iloc[0]))
    return out


def test_set(paper: str, dataset: str, subset: str) -> TestSet:
    """The test set of one published row (sizes and class shares the papers print)."""
    k = len(CLASSES[dataset])
    subset = str(subset)
    if dataset == "breakhis" and subset in _breakhis_counts():
        benign, malignant, n_test = _breakhis_counts()[subset]
        shares = (benign / (benign + malignant), malignant / (benign + malignant))
        if paper == "B":
            return TestSet(2, shares, _ernet_test_sizes().get(subset),
                           "000 Table 3 shares; 003 Sec. 4.3.1 test sizes")
        return TestSet(2, shares, n_test, "000 Table 3 shares; 001 Table VI test sizes")
    key = "breakhis_all" if dataset == "breakhis" else dataset
    counts, source = _SHARES[key]
    shares = None if counts is None else tuple(c / sum(counts) for c in counts)
    n = None
    if paper == "A" and dataset in ("bach", "miniddsm"):
        t6 = load_published("001", 6)
        n = int(t6[(t6["dataset"] == dataset) & (t6["metric"] == "n_test")]["value"].iloc[0])
        source += "; 001 Table VI test size"
    return TestSet(k, shares, n, source)


# --- the published rows ----------------------------------------------------------------------


def printed_half_unit(printed: str, metric: str, unit: str) -> float:
    """Half a unit of the last printed digit, in ``value``'s scale (``"0.883"`` -> 0.0005)."""
    text = printed.strip().rstrip("%")
    if "/" in text:  # paper A's F1 pairs: minority / weighted
        text = text.split("/")[0 if metric == "f1_minority" else 1]
    decimals = len(text.split(".")[1]) if "." in text else 0
    scale = 0.01 if unit == "percent" else 1.0
    return 0.5 * 10.0 ** (-decimals) * scale


def observed_rows(group: TableGroup) -> list[dict]:
    """The group's rows: ``{dataset, subset, model, bounds: {metric: (value, low, high)}}``.

    Rows of joined tables must share (dataset, subset, model); a metric printed twice must agree.
    """
    df = pd.concat([load_published(p, t) for p, t in group.tables], ignore_index=True)
    return rows_of(df, drop=group.drop, require_tables=len(group.tables))


def rows_of(df: pd.DataFrame, drop: Sequence[str] = (), require_tables: int = 1) -> list[dict]:
    """:func:`observed_rows` of any published rows (e.g. those an experiment lists)."""
    df = df[df["metric"].isin([m for m in CHECKED if m not in drop])
            & df["dataset"].isin(list(CLASSES))
            & ~df["model"].str.startswith("ref")]  # other studies' results: not the paper's runs
    rows = []
    for key, part in df.groupby(ROW_KEY, sort=False):
        if part[["paper", "table"]].drop_duplicates().shape[0] < require_tables:
            continue  # a joined group checks only rows printed by every table
        bounds: dict[str, tuple[float, float, float]] = {}
        for r in part.itertuples():
            half = printed_half_unit(r.printed, r.metric, r.unit or "fraction")
            lo, hi = r.value - half - EPS, r.value + half + EPS
            if r.metric in bounds:  # printed twice: intersect
                _, plo, phi = bounds[r.metric]
                lo, hi = max(lo, plo), min(hi, phi)
            bounds[r.metric] = (float(r.value), lo, hi)
        if len(bounds) >= 2:
            rows.append(dict(zip(ROW_KEY, key), bounds=bounds))
    return rows


# --- searching one row ------------------------------------------------------------------------


@dataclasses.dataclass
class Fit:
    fits: bool | None  # None: not tested
    method: str
    witness: Any = None  # a confusion matrix (or runs and weights) that reproduces the row


def _binary_grid(n_pos: int, n_neg: int, max_points: int | None = None,
                 correct: tuple[float, float] | None = None) -> np.ndarray:
    """The ``[[TN, FP], [FN, TP]]`` matrices of a test set, ``[B, 2, 2]``.

    ``max_points`` thins the grid evenly; ``correct = (low, high)`` keeps only matrices whose
    TP + TN lies in that range (an accuracy bound times the test size), which is what makes the
    enumeration fast.
    """
    step = 1 if max_points is None else max(1, int(math.ceil(math.sqrt((n_pos + 1) * (n_neg + 1) / max_points))))
    tp = np.arange(0, n_pos + 1, step)
    if correct is None:
        tp, tn = np.meshgrid(tp, np.arange(0, n_neg + 1, step), indexing="ij")
    else:
        first, last = math.ceil(correct[0]), math.floor(correct[1])
        pairs = [(t, c - t) for c in range(first, last + 1) for t in tp if 0 <= c - t <= n_neg]
        tp, tn = (np.array([p[i] for p in pairs], dtype=float) for i in (0, 1)) if pairs else (
            np.zeros(0), np.zeros(0))
    tp, tn = np.ravel(tp).astype(float), np.ravel(tn).astype(float)
    cm = np.empty((tp.size, 2, 2))
    cm[:, 0, 0], cm[:, 0, 1], cm[:, 1, 0], cm[:, 1, 1] = tn, n_neg - tn, n_pos - tp, tp
    return cm


DEFINITION_FREE = ("accuracy", "f1_minority", "f1_weighted", "f1_positive")


def check_integer_many(bounds: Mapping, definitions: Sequence[Definition],
                       test: TestSet) -> list[Fit]:
    """Two classes, test size known: enumerate every integer confusion matrix.

    Every test size the split could give (:meth:`TestSet.sizes`) and, per size, every plausible
    positive count; a fit's witness is its matrix (so its n), a miss covers them all. Per
    positive count, the matrices are first filtered by the metrics every definition shares
    (accuracy, F1), then by each definition's own metrics, one at a time.
    """
    if not definitions:
        return []
    found: list[Fit | None] = [None] * len(definitions)
    free = [m for m in DEFINITION_FREE if m in bounds]
    own = sorted((m for m in bounds if m not in DEFINITION_FREE), key=CHECKED.index)
    pairs = [(n, n_pos) for n in test.sizes() for n_pos in test.positive_counts(n)]
    # The printed size first: a fit there is reported before one at a neighbouring size.
    pairs.sort(key=lambda p: abs(p[0] - test.n))
    for n, n_pos in pairs:
        correct = None
        if "accuracy" in bounds:
            correct = (bounds["accuracy"][1] * n, bounds["accuracy"][2] * n)
        base = _binary_grid(n_pos, n - n_pos, correct=correct)
        for m in free:
            _, lo, hi = bounds[m]
            v = definition_metrics(base, definitions[0], [m])[m]
            base = base[(v >= lo) & (v <= hi)]
        if not len(base):
            continue
        for i, d in enumerate(definitions):
            if found[i] is not None:
                continue
            cm = base
            for m in own:
                _, lo, hi = bounds[m]
                v = definition_metrics(cm, d, [m])[m]
                cm = cm[(v >= lo) & (v <= hi)]
                if not len(cm):
                    break
            if len(cm):
                found[i] = Fit(True, "integer", cm[0].astype(int).tolist())
        if all(f is not None for f in found):
            break
    return [f if f is not None else Fit(False, "integer") for f in found]  # a miss: test.searched()


def check_integer(bounds: Mapping, definition: Definition, test: TestSet) -> Fit:
    """:func:`check_integer_many` for one definition."""
    return check_integer_many(bounds, [definition], test)[0]


def _rates_to_cm(z: np.ndarray, k: int, shares: Sequence[float] | None) -> np.ndarray:
    """``[B, K, K]`` matrices from ``[B, n]`` parameters: per-class softmax rows x class shares."""
    logits = z[:, : k * k].reshape(-1, k, k)
    rows = np.exp(logits - logits.max(axis=2, keepdims=True))
    rows /= rows.sum(axis=2, keepdims=True)
    if shares is None:
        s = np.exp(z[:, k * k:] - z[:, k * k:].max(axis=1, keepdims=True))
        share = s / s.sum(axis=1, keepdims=True)
    else:
        share = np.broadcast_to(np.asarray(shares, float), (len(z), k))
    return share[:, :, None] * rows


RATE_STARTS = 6  # seeded starts of the rate search (``--starts``): more starts, firmer misses


def check_rates(bounds: Mapping, definition: Definition, test: TestSet, *,
                starts: int | None = None, seed: int = 0) -> Fit:
    """Search per-class rates (class shares fixed when known) by least squares from seeded starts.

    The residuals are the distances outside each printed interval; the Jacobian is taken by
    finite differences on a batch of matrices at once (one vectorised metric call per step).
    """
    k = test.n_classes
    metrics = list(bounds)
    lo = np.array([bounds[m][1] for m in metrics])
    hi = np.array([bounds[m][2] for m in metrics])
    scale = np.maximum(hi - lo, 1e-6)

    def values(z: np.ndarray) -> np.ndarray:  # [B, n] -> [B, metrics]
        v = definition_metrics(_rates_to_cm(z, k, test.shares), definition, metrics)
        return np.stack([v[m] for m in metrics], axis=1)

    def residuals(z: np.ndarray) -> np.ndarray:
        v = values(z)
        return (np.maximum(0.0, lo - v) + np.maximum(0.0, v - hi)) / scale

    n_free = k * k + (0 if test.shares is not None else k)
    step = 1e-6

    def fun(z):
        return residuals(z[None])[0]

    def jac(z):
        batch = z[None, :] + step * np.eye(n_free)
        return ((residuals(batch) - fun(z)[None, :]) / step).T

    starts = RATE_STARTS if starts is None else starts
    rng = np.random.default_rng(seed)
    centre = float(np.mean([b[0] for b in bounds.values()]))
    diag = math.log(max(centre, 0.05) / max(1 - centre, 0.01) * (k - 1))
    for i in range(starts):
        z = rng.normal(scale=1.0, size=n_free)
        z[: k * k] += np.eye(k).ravel() * diag * (1.0 if i == 0 else rng.uniform(0.5, 1.5))
        res = optimize.least_squares(fun, z, jac=jac, method="trf", max_nfev=200)
        v = values(res.x[None])[0]
        if np.all((v >= lo) & (v <= hi)):
            return Fit(True, "rates", np.round(_rates_to_cm(res.x[None], k, test.shares)[0], 6).tolist())
    return Fit(False, "rates")


def check_hull(bounds: Mapping, definition: Definition, test: TestSet) -> Fit:
    """``over_runs``: is the row a mean of single-run metric vectors (LP over a grid)?"""
    if test.n_classes != 2:
        return Fit(None, "hull: not tested for more than two classes")
    single = definition.single()
    if test.n is not None:
        n_pos = round(test.n * test.shares[1])
        clouds = [_binary_grid(n_pos, test.n - n_pos, max_points=1500)]
    else:
        shares = [test.shares[1]] if test.shares is not None else [0.2, 0.35, 0.5, 0.65, 0.8]
        s, t = np.meshgrid(np.linspace(0, 1, 41), np.linspace(0, 1, 41), indexing="ij")
        s, t = s.ravel(), t.ravel()
        clouds = []
        for p in shares:
            cm = np.empty((s.size, 2, 2))
            cm[:, 0, 0], cm[:, 0, 1] = (1 - p) * t, (1 - p) * (1 - t)
            cm[:, 1, 0], cm[:, 1, 1] = p * (1 - s), p * s
            clouds.append(cm)
    metrics = list(bounds)
    for cm in clouds:
        values = definition_metrics(cm, single, metrics)
        m = np.stack([values[k] for k in metrics])  # [metrics, points]
        lo = np.array([bounds[k][1] for k in metrics])
        hi = np.array([bounds[k][2] for k in metrics])
        res = optimize.linprog(np.zeros(m.shape[1]), A_ub=np.vstack([m, -m]),
                               b_ub=np.concatenate([hi, -lo]), A_eq=np.ones((1, m.shape[1])),
                               b_eq=[1.0], bounds=(0, None), method="highs")
        if res.status == 0:
            used = np.flatnonzero(res.x > 1e-9)
            return Fit(True, "hull", {"runs": cm[used].round(4).tolist(),
                                      "weights": res.x[used].round(4).tolist()})
    return Fit(False, "hull")


def check_row(bounds: Mapping, definition: Definition, test: TestSet) -> Fit:
    """Is one printed row consistent with ``definition`` on ``test``?"""
    if definition.over_runs:
        return check_hull(bounds, definition, test)
    if test.n_classes == 2 and test.n is not None and test.shares is not None:
        return check_integer(bounds, definition, test)
    return check_rates(bounds, definition, test)


def _relevant(definition: Definition, metrics: Iterable[str]) -> tuple:
    """The parts of a definition that the row's metrics can tell apart (a cache key)."""
    metrics = set(metrics)
    rates = bool(metrics & {"sensitivity", "specificity", "ppv", "npv"})
    g = bool(metrics & {"g_mean", "iba"})
    return (definition.average if rates else None, definition.gmean_average if g else None,
            definition.iba_squared if "iba" in metrics else None, definition.over_runs)


# --- all tables -------------------------------------------------------------------------------


def check_row_all(bounds: Mapping, definitions: Sequence[Definition], test: TestSet) -> list[Fit]:
    """:func:`check_row` for many definitions, each distinct check done once.

    A mean over runs fits whenever its single-run definition does (one run is a mean), so the
    linear programme runs only where the single run fails.
    """
    keys = [_relevant(d, bounds) for d in definitions]
    unique: dict[tuple, Definition] = {}
    for key, d in zip(keys, definitions):
        unique.setdefault(key, d)
    results: dict[tuple, Fit] = {}
    singles = [(k, d) for k, d in unique.items() if not d.over_runs]
    if test.n_classes == 2 and test.n is not None and test.shares is not None:
        fits = check_integer_many(bounds, [d for _, d in singles], test)
        results.update({k: f for (k, _), f in zip(singles, fits)})
    else:
        results.update({k: check_rates(bounds, d, test) for k, d in singles})
    for key, d in unique.items():
        if d.over_runs:
            single = results.get(_relevant(d.single(), bounds))
            results[key] = (Fit(True, "hull", "one run") if single is not None and single.fits
                            else check_hull(bounds, d, test))
    return [results[k] for k in keys]


def solve(groups: Sequence[TableGroup] = TABLE_GROUPS,
          on_row: Callable[[list[dict]], None] | None = None) -> pd.DataFrame:
    """One row per (table group, published row, candidate definition): fits, method, witness.

    Rows are checked fewest metrics first, so that a definition a row misses on some of its
    columns (say Table XII alone) is not searched again for the same row with more columns
    (Tables VIII + XII): more columns can only take fits away. Such a miss is recorded with
    method ``implied by <group>``; it is as strong as the miss it comes from (a proof for
    ``integer`` and ``hull``, none found for ``rates``). ``on_row`` gets each row's results
    as they are found (``--csv`` appends them, so a long run leaves what it has done).
    """
    items = [(group, row) for group in groups for row in observed_rows(group)]
    items.sort(key=lambda item: len(item[1]["bounds"]))
    misses: dict[tuple, list[tuple[frozenset, str, set[str]]]] = {}
    out = []
    for group, row in items:
        test = test_set(group.paper, row["dataset"], row["subset"])
        definitions = candidate_definitions(test.n_classes)
        key = (group.paper, *(row[k] for k in ROW_KEY))
        metrics = frozenset(row["bounds"])
        implied: dict[str, str] = {}
        for other_metrics, label, missed in misses.get(key, []):
            if other_metrics <= metrics:
                implied.update({name: label for name in missed if name not in implied})
        todo = [d for d in definitions if d.name not in implied]
        fits = dict(zip([d.name for d in todo], check_row_all(row["bounds"], todo, test)))
        done = []
        for d in definitions:
            fit = fits.get(d.name) or Fit(False, f"implied by {implied[d.name]}")
            done.append({"group": group.label, "paper": group.paper, **{k: row[k] for k in ROW_KEY},
                        "definition": d.name, "fits": fit.fits, "method": fit.method,
                        "witness": fit.witness, "metrics": ",".join(row["bounds"]),
                        "test_set": test.source, "searched": _searched(test)})
        out += done
        if on_row is not None:
            on_row(done)
        missed = {d.name for d in definitions if (fits.get(d.name) or Fit(False, "")).fits is False}
        misses.setdefault(key, []).append((metrics, group.label, missed))
    order = {g.label: i for i, g in enumerate(groups)}
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    return (frame.assign(_g=frame["group"].map(order)).sort_values("_g", kind="stable")
            .drop(columns="_g").reset_index(drop=True))


def _searched(test: TestSet) -> str:
    if test.n_classes == 2 and test.n is not None and test.shares is not None:
        return "integer: " + test.searched()
    return "rates: class shares " + ("as printed" if test.shares is not None else "searched")


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """``definition x table group`` -> ``"fitted/checked"`` (empty where not tested)."""
    tested = results[results["fits"].notna()]
    counts = tested.groupby(["definition", "group"], sort=False)["fits"].agg(
        lambda s: f"{int(s.astype(bool).sum())}/{len(s)}")
    table = counts.unstack("group")
    order = [g.label for g in TABLE_GROUPS if g.label in table.columns]
    defs = list(dict.fromkeys(results["definition"]))
    return table.reindex(index=defs, columns=order).fillna("")


def inconsistent_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows that no single-run definition fits (``over_runs`` aside): per group, the row keys."""
    single = results[~results["definition"].str.startswith("mean over runs")]
    keys = ["group", *ROW_KEY]
    any_fit = single.groupby(keys, sort=False)["fits"].agg(lambda s: bool(s.fillna(False).any()))
    bad = any_fit[~any_fit].reset_index()[keys]
    if "searched" in single.columns and len(bad):  # what a miss covers: "no matrix for n in [a, b]"
        searched = single.groupby(keys, sort=False)["searched"].first().reset_index()
        bad = bad.merge(searched, on=keys, how="left")
    return bad


def choose(results: pd.DataFrame) -> dict[str, dict]:
    """Each paper's definition per kind of problem (``"A/binary"``, ``"A/multiclass"`` ...).

    The single-run definition fitting most rows wins; ties, and papers where no single run fits
    any row, are decided by what the paper's text states (:data:`STATED`), then by how many
    rows the mean over runs of it fits, then by the order of
    :func:`candidate_definitions` (binary before macro, unsquared before squared): the plainest
    reading the numbers allow.
    """
    out = {}
    results = results.assign(kind=[problem_kind(len(CLASSES[d])) for d in results["dataset"]])
    for (paper, kind), part in results.groupby(["paper", "kind"], sort=True):
        fits = part["fits"].fillna(False).astype(bool)
        counted = part.assign(fit=fits)[part["fits"].notna()]
        score = counted.groupby("definition", sort=False)["fit"].sum()
        singles = [d for d in dict.fromkeys(part["definition"]) if not d.startswith("mean over runs")]
        over = {d: int(score.get(f"mean over runs of [{d}]", 0)) for d in singles}
        stated = STATED.get(paper, lambda d: False)
        best = max(singles, key=lambda d: (int(score.get(d, 0)), bool(stated(parse_definition(d))),
                                           over[d], -singles.index(d)))
        rows = part[["group", *ROW_KEY]].drop_duplicates().shape[0]
        over_checked = int(part[part["definition"] == f"mean over runs of [{best}]"]["fits"].notna().sum())
        out[f"{paper}/{kind}"] = {"definition": best, "fitted": int(score.get(best, 0)), "rows": rows,
                                  "over_runs_fitted": over[best], "over_runs_checked": over_checked}
    return out


def row_fits(row: Mapping, paper: str) -> tuple[bool, str]:
    """Does any single-run definition fit this published row? ``(fits, search method)``."""
    test = test_set(paper, row["dataset"], row["subset"])
    fits = check_row_all(row["bounds"], candidate_definitions(test.n_classes, over_runs=False), test)
    return any(f.fits for f in fits), fits[0].method


def inconsistent_keys(published: pd.DataFrame, paper: str,
                      verdict: Callable[[Mapping, str], tuple[bool, str]] = row_fits,
                      ) -> dict[tuple[str, str, str], str]:
    """``{(dataset, subset, model): why}`` for the published rows no single-run definition fits.

    What the report marks "internally inconsistent in the paper"; ``paper`` is A, B or C. A
    miss of the integer enumeration is a proof; a miss of the rate search says so. ``verdict``
    answers one row (:func:`row_fits` solves it; :mod:`breastcam.report.verdicts` first looks
    it up among the shipped answers).
    """
    out = {}
    for row in rows_of(published):
        fits, method = verdict(row, paper)
        if not fits:
            if method == "integer":
                why = (f"{INCONSISTENT} (no integer confusion matrix for "
                       f"{test_set(paper, row['dataset'], row['subset']).searched()})")
            else:
                why = f"{INCONSISTENT} (no confusion matrix found at the dataset's class shares)"
            out[(row["dataset"], str(row["subset"]), row["model"])] = why
    return out


# Definitions the papers' own words state (a tie-break after the printed rows): paper A's
# "GMean calculates the geometric mean of class accuracies" (000 Sec. E, 001 Sec. IV-D); papers
# B and C define precision and sensitivity from TP, FP, FN of the positive class (003 eqs.
# 12-15, 004 eqs. 1-4).
STATED = {"A": lambda d: d.gmean_average == "multiclass",
          "B": lambda d: d.average == "binary", "C": lambda d: d.average == "binary"}


# --- the document -----------------------------------------------------------------------------


def markdown(results: pd.DataFrame, skipped: Sequence[str] = (), made_by: str = "") -> str:
    """docs/METRIC_DEFINITIONS.md: the result table, the choices and the inconsistent rows."""
    from breastcam.report.tables import to_markdown

    table = summary(results).reset_index().rename(columns={"index": "definition"})
    chosen = choose(results)
    bad = inconsistent_rows(results)
    lines = [
        "# Metric definitions the papers' numbers allow",
        "",
        "Generated by `python -m breastcam.report.metric_solver --write docs/METRIC_DEFINITIONS.md`",
        "(`breastcam/report/metric_solver.py`); do not edit by hand.",
        *([f"This version: {made_by}", ""] if made_by else [""]),
        "Each published row (one model, one dataset / magnification, all its metric columns) is",
        "tested against each candidate definition: is there a confusion matrix that reproduces every",
        "printed column within its rounding? Cells: rows fitted / rows checked. Search methods:",
        "`integer` (two classes, test size printed: every integer matrix enumerated, a miss is a",
        "proof), `rates` (per-class rates searched from seeded starts: a fit has a witness, a miss",
        "means none was found), `hull` (a mean over runs: the row must be a convex combination of",
        "single-run values; any number of runs with any weights, so a fit is weak evidence; two",
        "classes only). Definitions (`breastcam.evaluate.paper_metrics`): `binary` = positive class",
        "the last one; `abnormal` = first class against the others merged; `macro` / `weighted` /",
        "`micro` = one-vs-rest averaging (imblearn `average=`); `G:multiclass` = G-mean as the",
        "geometric mean of per-class recalls (imblearn's default); `G:classmean` (three or more",
        "classes) = the mean over classes of each class's one-vs-rest sqrt(sens x spec), IBA",
        "likewise per class; otherwise G-mean = sqrt(sens x spec) under the row's averaging; IBA",
        "alpha 0.1, `IBA squared` = imblearn's `squared=True`.",
        "",
        "A row's columns are checked fewest first: a definition a row misses on some of its",
        "columns (e.g. Table XII alone) is recorded as missed (method `implied by ...`) for the",
        "same row with more columns (Tables VIII + XII), which cannot fit where a part does not.",
        "",
        "Groups named `without F1` leave paper A's F1 pairs out: comparing them with the full",
        "groups shows whether the F1 columns, read as minority-class / weighted F1 (SPEC section",
        "3), are what no matrix can reproduce. The chosen definition breaks ties by what the paper's",
        "text states (`STATED` in the solver), then by the mean-over-runs fits.",
        "",
        "## Rows fitted per table",
        "",
        to_markdown(table),
        "## Chosen definition per paper",
        "",
    ]
    for paper, c in chosen.items():
        lines.append(f"- **Paper {paper}**: `{c['definition']}` fits {c['fitted']} of {c['rows']} "
                     f"rows; the mean over runs of it fits {c['over_runs_fitted']} of "
                     f"{c['over_runs_checked']} rows tested.")
    lines += ["", "## Rows no single-run definition fits (internally inconsistent in the paper)", "",
              "For a two-class row with a printed test size, a miss means no integer confusion matrix",
              "reproduces the row for any n in the range shown (`searched`): the printed size +- 2",
              "(each class's share rounded either way) and, per n, the positive count within 3 of its",
              "stratified value; only then is the row called internally inconsistent.", ""]
    lines.append(to_markdown(bad) if len(bad) else "None.\n")
    if skipped:
        lines += ["## Not run in this version of the file", "",
                  "These groups need the rate search (`--multiclass`), which was not run when this "
                  "file was generated: " + ", ".join(skipped) + ".", ""]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    global RATE_STARTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", help="write the Markdown result table to this file")
    parser.add_argument("--csv", help="also write every (row, definition) result to this CSV")
    parser.add_argument("--multiclass", action="store_true",
                        help=f"also the multi-class groups ({', '.join(MULTICLASS_GROUPS)}): slow")
    parser.add_argument("--from-csv", nargs="+",
                        help="render CSVs written by --csv instead of solving again")
    parser.add_argument("--only", nargs="+", help="solve only these groups (labels)")
    parser.add_argument("--made-by", help="a line saying how this version was made (shown in it)")
    parser.add_argument("--starts", type=int, default=RATE_STARTS,
                        help=f"seeded starts of the rate search (default {RATE_STARTS})")
    args = parser.parse_args(argv)
    RATE_STARTS = args.starts
    groups = [g for g in TABLE_GROUPS if (args.multiclass or g.label not in MULTICLASS_GROUPS)
              and (not args.only or g.label in args.only)]
    if args.from_csv:
        results = pd.concat([pd.read_csv(f, dtype={"subset": str, "paper": str})
                             for f in args.from_csv], ignore_index=True)
        results["fits"] = results["fits"].map({True: True, False: False, "True": True, "False": False})
        done = set(results["group"])
        groups = [g for g in TABLE_GROUPS if g.label in done]
    else:
        if args.csv:
            Path(args.csv).unlink(missing_ok=True)
        results = solve(groups, functools.partial(_append_rows, args.csv) if args.csv else None)
    skipped = [g.label for g in TABLE_GROUPS if g not in groups]
    text = markdown(results, skipped, args.made_by or "")
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
    print(text)
    return 0


def _append_rows(csv: str, done: list[dict]) -> None:
    """Append the rows solved so far to ``csv`` (an interrupted solve keeps what it found)."""
    pd.DataFrame(done).to_csv(csv, mode="a", header=not Path(csv).is_file(), index=False, lineterminator="\n")


if __name__ == "__main__":
    raise SystemExit(main())
