"""Sanity checks for saliency maps (Adebayo et al. 2018): does a map change when the model does?

Model-parameter randomisation: the model's weighted layers, from the top (the classifier) down,
are cut into ``steps`` groups. *Cascading*: group 1, then groups 1-2, ... are re-drawn at random,
each step keeping the earlier ones random. *Independent*: one group at a time, the rest trained.
After each step every method explains the same images again and its maps are compared with the
trained model's, per image:

- Spearman rank correlation of the (absolute) maps (a constant map ranks nothing: 0);
- SSIM (Wang et al. 2004; Gaussian window sigma 1.5, data range 1) of the maps in [0, 1];
- the fraction of the trained map's Otsu region (DT Grad-CAM's kept region, for any method) that
  the randomised map's Otsu region still covers.

Each is averaged over the images with a 95 % percentile-bootstrap interval. A method *passes*
when, with every group random (the last cascading step), the upper bound of its mean Spearman
correlation is below ``threshold`` (default 0.5): what is left of the map is not what the trained
model showed. A control that ignores the model (the input's edges, :class:`EdgeMap`) is checked
beside the methods and must fail: it shows the check can fail.

Re-drawing a weight: kernels (``ndim >= 2``) from ``N(0, s)``, vectors (biases, BN scale and
offset) from ``N(m, s)``, with ``m`` and ``s`` the trained variable's own mean and standard
deviation (seeded), so activations keep their scale and the maps stay defined; BatchNorm's moving
statistics are kept. The model's weights are restored afterwards, and the CAM objects are reused
across steps (one trace).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import cv2
import keras
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from breastcam.errors import ConfigError
from breastcam.explain.metrics import binarize

MODES = ("cascading", "independent")
MEASURES = ("spearman", "ssim", "otsu_kept")
CONTROL = "edges (control: ignores the model)"
_STATISTICS = ("moving_mean", "moving_variance")


class EdgeMap:
    """A "map" computed from the input alone: the Sobel gradient magnitude of the image, in [0, 1].

    It cannot depend on the model, so a sanity check must fail it.
    """

    name = CONTROL

    def __call__(self, images, targets=None) -> np.ndarray:
        out = []
        for img in np.asarray(images, np.float32):
            grey = img.mean(axis=-1)
            mag = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
            span = float(mag.max() - mag.min())
            out.append((mag - mag.min()) / span if span > 0 else np.zeros_like(mag))
        return np.stack(out).astype(np.float32)


# --- the comparisons ---------------------------------------------------------------------------


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of ``|a|`` and ``|b|`` (0 when either is constant)."""
    a, b = np.abs(a).ravel(), np.abs(b).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two ``[H, W]`` maps in [0, 1] (Gaussian window, sigma 1.5)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def otsu_kept(trained: np.ndarray, randomised: np.ndarray) -> float:
    """The fraction of the trained map's Otsu region that the randomised map's region covers."""
    region = binarize(trained, "otsu")
    if not region.any():
        return float("nan")
    return float((region & binarize(randomised, "otsu")).sum() / region.sum())


def compare(trained: np.ndarray, randomised: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: ``{measure: [B]}`` between two ``[B, H, W]`` stacks of maps."""
    return {
        "spearman": np.array([spearman(a, b) for a, b in zip(trained, randomised)]),
        "ssim": np.array([ssim(a, b) for a, b in zip(trained, randomised)]),
        "otsu_kept": np.array([otsu_kept(a, b) for a, b in zip(trained, randomised)]),
    }


def mean_ci(values: np.ndarray, n_bootstrap: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over the images and its 95 % percentile-bootstrap interval (NaNs left out)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (int(n_bootstrap), len(v)))].mean(axis=1)
    return float(v.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


# --- the randomisation -------------------------------------------------------------------------


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Layers holding weights to randomise, top (output) first; nested models searched."""
    found: list[keras.layers.Layer] = []

    def walk(m):
        for layer in m.layers:
            if isinstance(layer, keras.Model):
                walk(layer)
            elif _randomisable(layer):
                found.append(layer)

    walk(model)
    return found[::-1]


def _randomisable(layer) -> list:
    return [w for w in layer.weights if not any(s in w.path for s in _STATISTICS)]


def layer_groups(model: keras.Model, steps: int) -> list[tuple[str, list]]:
    """``steps`` groups of weighted layers, top first: the top layer alone, then the rest cut into
    ``steps - 1`` runs of about equal length. Each is labelled by its top and bottom layer."""
    layers = weighted_layers(model)
    if not layers:
        raise ConfigError(f"model {model.name!r} has no weights to randomise")
    steps = max(1, min(int(steps), len(layers)))
    groups = [layers[:1]] + [list(g) for g in np.array_split(np.array(layers[1:], dtype=object), steps - 1)
                             if len(g)]
    return [(g[0].name if len(g) == 1 else f"{g[0].name} .. {g[-1].name} ({len(g)} layers)", g) for g in groups]


def randomise(layers: Sequence, rng: np.random.Generator) -> None:
    """Re-draw the weights of ``layers`` in place (see the module docstring)."""
    for layer in layers:
        for w in _randomisable(layer):
            value = np.asarray(w)
            m, s = float(value.mean()), float(value.std())
            if s == 0.0:
                s = 0.05 if value.ndim >= 2 else max(abs(m), 0.05) * 0.1
            centre = 0.0 if value.ndim >= 2 else m
            w.assign(rng.normal(centre, s, value.shape).astype(value.dtype))


@dataclasses.dataclass
class SanityResult:
    table: pd.DataFrame  # method, mode, step, layers, measure, mean, ci_low, ci_high
    verdicts: dict  # method -> {"passes": bool, "spearman_high": float, "why": str}
    strip: dict  # method -> [trained map, cascading step maps...] of the first image
    steps: list  # the step labels
    threshold: float
    data: Any = None  # a data_randomisation.DataRandomisationResult, when that check ran


def sanity_check(
    model: keras.Model,
    images: np.ndarray,
    methods: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    *,
    steps: int = 5,
    modes: Sequence[str] = MODES,
    seed: int = 0,
    threshold: float = 0.5,
    n_bootstrap: int = 1000,
    control: bool = True,
    progress: Callable[[str], None] | None = None,
) -> SanityResult:
    """Run the randomisation checks of ``methods`` (name -> maps of ``images`` for ``model``).

    ``images`` are the model's input (preprocessed). The methods must read ``model``'s weights at
    call time (CAM objects of this model do). ``model`` is left as it was.
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(f"unknown randomisation mode(s) {unknown}; choose from {list(MODES)}")
    if not 0.0 < float(threshold) < 1.0:
        raise ConfigError(f"threshold {threshold!r} must be in (0, 1)")
    methods = dict(methods)
    if control:
        methods[CONTROL] = EdgeMap()
    groups = layer_groups(model, steps)
    labels = [label for label, _ in groups]
    original = [np.asarray(w).copy() for w in model.weights]
    trained = {name: fn(images) for name, fn in methods.items()}
    strip = {name: [maps[0]] for name, maps in trained.items()}
    rows = []
    try:
        for mode in modes:
            rng = np.random.default_rng(seed)
            for k, (label, group) in enumerate(groups, start=1):
                if progress:
                    progress(f"{mode} step {k}/{len(groups)}: {label}")
                if mode == "independent":
                    _restore(model, original)
                randomise(group, rng)
                for name, fn in methods.items():
                    maps = fn(images)
                    if mode == "cascading":
                        strip[name].append(maps[0])
                    for measure, values in compare(trained[name], maps).items():
                        mean, lo, hi = mean_ci(values, n_bootstrap, seed)
                        rows.append({"method": name, "mode": mode, "step": k, "layers": label,
                                     "measure": measure, "mean": mean, "ci_low": lo, "ci_high": hi,
                                     "images": int(np.isfinite(values).sum())})
            _restore(model, original)
    finally:
        _restore(model, original)
    table = pd.DataFrame(rows)
    return SanityResult(table, verdicts(table, len(groups), threshold), strip, labels, float(threshold))


def _restore(model: keras.Model, original: list[np.ndarray]) -> None:
    for w, value in zip(model.weights, original):
        w.assign(value)


def verdicts(table: pd.DataFrame, last_step: int, threshold: float) -> dict:
    """Per method: passes when the upper bound of its mean Spearman correlation with every group
    random (the last cascading step) is below ``threshold``."""
    out = {}
    rows = table[(table["mode"] == "cascading") & (table["step"] == last_step) & (table["measure"] == "spearman")]
    for row in rows.itertuples():
        passes = bool(row.ci_high < threshold)
        out[row.method] = {
            "passes": passes, "spearman": row.mean, "spearman_ci_high": row.ci_high,
            "why": (f"with every layer random its maps keep a rank correlation of {row.mean:.2f} "
                    f"(95 % CI up to {row.ci_high:.2f}) with the trained model's"
                    + (f": below {threshold}, the maps depend on the weights" if passes else
                       f": not below {threshold}, the maps do not show what the model learnt")),
        }
    return out


def markdown(result: SanityResult) -> str:
    """The table (Spearman / SSIM / Otsu-region per step, mean and CI) and the verdicts."""
    lines = ["# Sanity checks: model-parameter randomisation", "",
             f"Pass: the upper 95 % bound of the mean Spearman correlation with every layer random is "
             f"below {result.threshold}. The control ignores the model and must fail.", "",
             "| method | verdict | Spearman, all random | why |", "|---|---|---:|---|"]
    for method, v in result.verdicts.items():
        lines.append(f"| {method} | {'passes' if v['passes'] else 'FAILS'} | {v['spearman']:.3f} | {v['why']} |")
    lines += ["", "| method | mode | step | layers randomised | measure | mean | 95 % CI | images |",
              "|---|---|---:|---|---|---:|---|---:|"]
    for r in result.table.itertuples():
        lines.append(f"| {r.method} | {r.mode} | {r.step} | {r.layers} | {r.measure} | {r.mean:.3f} | "
                     f"[{r.ci_low:.3f}, {r.ci_high:.3f}] | {r.images} |")
    return "\n".join(lines) + "\n"


def strip_figure(result: SanityResult, image: np.ndarray, path) -> None:
    """The randomisation strip of the first image: one row per method, trained then each
    cascading step (Adebayo et al.'s Figure 2 layout)."""
    titles = ["image", "trained"] + [f"random to\n{label.split(' ..')[0].split(' (')[0]}" for label in result.steps]
    map_rows_figure(result.strip, image, titles, path)


def map_rows_figure(rows: Mapping[str, Sequence[np.ndarray]], image: np.ndarray, titles: Sequence[str],
                    path) -> None:
    """One row per method: the image, then that method's maps (jet, [0, 1]); ``titles`` head
    the columns of the first row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    cols = 1 + max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(names), cols, figsize=(1.6 * cols, 1.7 * len(names)), squeeze=False)
    shown = np.asarray(image, np.float32)
    shown = (shown - shown.min()) / max(float(np.ptp(shown)), 1e-12)
    for i, name in enumerate(names):
        axes[i, 0].imshow(shown)
        for j, m in enumerate(rows[name], start=1):
            axes[i, j].imshow(m, cmap="jet", vmin=0, vmax=1)
        axes[i, 0].set_ylabel(name if len(name) < 14 else name.split(" (")[0], fontsize=7)
        for j in range(cols):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if i == 0 and j < len(titles):
                axes[i, j].set_title(titles[j], fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
