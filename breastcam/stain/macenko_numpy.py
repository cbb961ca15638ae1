"""Plain NumPy Macenko stain normalisation, one image at a time, in float64.

This is the reference the batched TensorFlow version (:mod:`breastcam.stain.macenko`) is tested
against. It follows the widely used implementation of Macenko et al. (ISBI 2009) found in
``HEnorm_python`` and torchstain's numpy backend step by step, so that its output can also be
compared with torchstain's, and adds what those lack: a minimum tissue count and a degeneracy
check, with the tile returned unchanged (and flagged) instead of a crash or a garbage image.

The steps, for an RGB image ``I`` (uint8 or float in [0, 255]):

1. Optical density ``OD = -log((I + 1) / Io)``. The ``+ 1`` keeps black pixels finite
   (``log(0)``); it is what the common implementations do, so outputs stay comparable.
2. Tissue pixels: every channel's OD ``>= beta`` (equivalently, every channel
   ``<= Io * exp(-beta) - 1``: 205 for Io=240, beta=0.15).
3. Eigenvectors of the 3x3 covariance of the tissue OD (the same plane as the SVD of the centred
   OD); the tissue OD is projected on the plane of the two largest.
4. Angles ``phi = atan2(t_largest, t_second)``; the ``alpha`` and ``100 - alpha`` percentiles
   give two unit stain vectors. Hematoxylin is the one with the larger first (red) OD component.
5. Concentrations of every pixel by least squares (the 3x2 pseudo-inverse); the 99th percentile
   of each stain's concentrations over all pixels is its maximum (as the common implementations
   do: background pixels included).
6. Normalise: scale concentrations to the reference maxima, rebuild
   ``Io * exp(-HE_ref @ C)``, round half up and clip to [0, 255] as uint8 (torchstain truncates;
   rounding is the unbiased choice and differs from it by at most one grey level).

An image falls back (returned unchanged, flag set) when it has fewer than ``min_tissue_pixels``
tissue pixels, when the two stain vectors are nearly parallel (``|cos| > max_stain_cosine``:
one stain only, so the pseudo-inverse is ill-conditioned), or when a maximum concentration is
not a finite number above ``min_max_concentration``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from breastcam.errors import DataError, RunStateError

# Defaults shared with the TensorFlow implementation (documented in breastcam.stain.macenko).
IO = 240.0
ALPHA = 1.0
BETA = 0.15
MIN_TISSUE_PIXELS = 500
MAX_STAIN_COSINE = 0.99
MIN_MAX_CONCENTRATION = 1e-3


@dataclasses.dataclass(frozen=True)
class StainEstimate:
    """Stain vectors and maximum concentrations of one image, and whether they are usable."""

    stain_matrix: np.ndarray  # (3, 2): hematoxylin, eosin unit OD vectors as columns
    max_concentrations: np.ndarray  # (2,)
    tissue_pixels: int
    ok: bool
    reason: str  # "ok", "too little tissue", "single stain", "bad concentrations"


def optical_density(image: np.ndarray, io: float = IO) -> np.ndarray:
    """``-log((I + 1) / Io)`` as float64, shape (N, 3)."""
    return -np.log((np.asarray(image, dtype=np.float64).reshape(-1, 3) + 1.0) / io)


def estimate_stains(
    image: np.ndarray,
    *,
    io: float = IO,
    alpha: float = ALPHA,
    beta: float = BETA,
    min_tissue_pixels: int = MIN_TISSUE_PIXELS,
    max_stain_cosine: float = MAX_STAIN_COSINE,
    min_max_concentration: float = MIN_MAX_CONCENTRATION,
) -> tuple[StainEstimate, np.ndarray]:
    """Stains of ``image`` (H x W x 3) and the concentration map (2, N) used to find them."""
    od = optical_density(image, io)
    tissue = od[np.all(od >= beta, axis=1)]
    n = int(tissue.shape[0])
    nan_he = np.full((3, 2), np.nan)
    if n < max(int(min_tissue_pixels), 2):
        return StainEstimate(nan_he, np.full(2, np.nan), n, False, "too little tissue"), None

    _, eigvecs = np.linalg.eigh(np.cov(tissue.T))
    plane = eigvecs[:, 1:3]  # second-largest, largest
    t = tissue @ plane
    phi = np.arctan2(t[:, 1], t[:, 0])
    min_phi = np.percentile(phi, alpha)
    max_phi = np.percentile(phi, 100.0 - alpha)
    v_min = plane @ np.array([np.cos(min_phi), np.sin(min_phi)])
    v_max = plane @ np.array([np.cos(max_phi), np.sin(max_phi)])
    if v_min[0] > v_max[0]:
        he = np.stack([v_min, v_max], axis=1)
    else:
        he = np.stack([v_max, v_min], axis=1)

    cosine = float(abs(he[:, 0] @ he[:, 1]))
    if not np.all(np.isfinite(he)) or cosine > max_stain_cosine:
        return StainEstimate(he, np.full(2, np.nan), n, False, "single stain"), None

    conc = np.linalg.pinv(he) @ od.T  # (2, N)
    max_c = np.array([np.percentile(conc[0], 99), np.percentile(conc[1], 99)])
    if not np.all(np.isfinite(max_c)) or np.any(max_c <= min_max_concentration):
        return StainEstimate(he, max_c, n, False, "bad concentrations"), None
    return StainEstimate(he, max_c, n, True, "ok"), conc


def normalize(
    image: np.ndarray,
    stain_matrix_ref: np.ndarray,
    max_concentrations_ref: np.ndarray,
    **params,
) -> tuple[np.ndarray, bool, StainEstimate]:
    """Normalise one image to the reference; returns (uint8 image, fell_back, estimate).

    ``params`` are the keyword arguments of :func:`estimate_stains`.
    """
    image = np.asarray(image)
    h, w, _ = image.shape
    est, conc = estimate_stains(image, **params)
    if not est.ok:
        unchanged = np.clip(np.rint(image.astype(np.float64)), 0, 255).astype(np.uint8)
        return unchanged, True, est
    io = params.get("io", IO)
    conc = conc * (np.asarray(max_concentrations_ref) / est.max_concentrations)[:, None]
    out = io * np.exp(-np.asarray(stain_matrix_ref) @ conc)
    out = np.minimum(np.floor(out + 0.5), 255).astype(np.uint8)  # round half up, clip
    return out.T.reshape(h, w, 3), False, est


class MacenkoNumpy:
    """fit/transform wrapper around the functions above (same parameters as ``Macenko``)."""

    def __init__(
        self,
        io: float = IO,
        alpha: float = ALPHA,
        beta: float = BETA,
        min_tissue_pixels: int = MIN_TISSUE_PIXELS,
        max_stain_cosine: float = MAX_STAIN_COSINE,
        min_max_concentration: float = MIN_MAX_CONCENTRATION,
    ):
        self.params = dict(
            io=io,
            alpha=alpha,
            beta=beta,
            min_tissue_pixels=min_tissue_pixels,
            max_stain_cosine=max_stain_cosine,
            min_max_concentration=min_max_concentration,
        )
        self.stain_matrix_ = None
        self.max_concentrations_ = None

    def fit(self, reference_image: np.ndarray) -> "MacenkoNumpy":
        est, _ = estimate_stains(reference_image, **self.params)
        if not est.ok:
            raise DataError(
                f"the reference image cannot be used for Macenko fitting ({est.reason}, "
                f"{est.tissue_pixels} tissue pixels): choose a reference tile with H&E tissue"
            )
        self.stain_matrix_ = est.stain_matrix
        self.max_concentrations_ = est.max_concentrations
        return self

    def set_reference(self, stain_matrix, max_concentrations) -> "MacenkoNumpy":
        self.stain_matrix_ = np.asarray(stain_matrix, dtype=np.float64).reshape(3, 2)
        self.max_concentrations_ = np.asarray(max_concentrations, dtype=np.float64).reshape(2)
        return self

    def transform(self, images: np.ndarray, return_flags: bool = False):
        """Normalise a batch (B, H, W, 3) or one image (H, W, 3); uint8 out."""
        if self.stain_matrix_ is None:
            raise RunStateError("MacenkoNumpy is not fitted: call fit(reference_image) first")
        images = np.asarray(images)
        single = images.ndim == 3
        batch = images[None] if single else images
        outs, flags = [], []
        for img in batch:
            out, fell_back, _ = normalize(
                img, self.stain_matrix_, self.max_concentrations_, **self.params
            )
            outs.append(out)
            flags.append(fell_back)
        out = np.stack(outs)
        flags = np.array(flags)
        if single:
            out, flags = out[0], flags[0]
        return (out, flags) if return_flags else out
