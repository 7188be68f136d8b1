"""Separation quality numbers: SDR (how close an estimate is, scale included) and SI-SDR (the same,
forgiving a gain error), in dB. Used to score streaming against offline inference and separated stems
against the fixture generator's ground truth."""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(|ref|² / |ref - est|²) over all samples and channels (the BSS-eval-free "new SDR" of
    the MDX/SDX challenges, which is what demucs reports)."""
    ref = np.asarray(reference, dtype=np.float64)
    err = ref - np.asarray(estimate, dtype=np.float64)
    return float(10.0 * np.log10((np.sum(ref * ref) + _EPS) / (np.sum(err * err) + _EPS)))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR: the estimate is first projected onto the reference, so a pure gain
    difference costs nothing."""
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    est = np.asarray(estimate, dtype=np.float64).reshape(-1)
    scale = np.dot(est, ref) / (np.dot(ref, ref) + _EPS)
    return sdr(scale * ref, est)


def sdr_per_stem(sources: list[str], reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """SDR of each stem of `[S, C, N]` arrays, keyed by source name."""
    return {name: sdr(reference[i], estimate[i]) for i, name in enumerate(sources)}
