"""Mode `clean`: multichannel Wiener re-estimation of every stem from all stems' spectrograms.

The classic post-filter of Open-Unmix and Spleeter (Nugraha, Liutkus & Vincent 2016): each stem j
has a power v_j (its channel-mean |STFT|²) and a spatial covariance R_j per frequency, and is
re-estimated as y_j = v_j R_j (Σ_k v_k R_k)⁻¹ x from the mixture x (the sum of the stems). Where
another stem dominates a bin, a stem's bleed there is cut, and the re-estimates still add up to the
mixture. This is one iteration of the EM update in Open-Unmix's filtering code (vendored by demucs
as `demucs.wiener.expectation_maximization`; the test checks the two agree), with two changes for a
stream. R_j is an exponentially forgetting average carried across hops and updated once per batch
of new frames (a hop brings only a few frames, and the next must not start from nothing), with a
memory of a few frames: the stems' spatial images change note by note, and 0.2 s measured 1-3 dB
worse than 0.02 s on the fixtures. And it is numpy over [T, F] at once instead of torch loops over
channel index triples, which cost 18 ms per 46 ms hop here (40% of real time) against a few ms.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-10  # as Open-Unmix: the weight floor; √EPS·I regularizes the mixture covariance
REG = np.sqrt(EPS)
LOADING = 1e-6  # plus this share of its trace, so the regularization scales with the level
MEMORY_S = 0.02


class StreamingWiener:
    """Re-estimates stereo stems batch by batch, carrying the spatial covariances across batches."""

    def __init__(self, bins: int, sources: int, frame_rate: float, memory_s: float = MEMORY_S) -> None:
        self.forget = float(np.exp(-1.0 / (memory_s * frame_rate))) if memory_s > 0 else 0.0
        self._cov = np.zeros((sources, bins, 2, 2), np.complex64)  # Σ y yᴴ with forgetting
        self._weight = np.zeros((sources, bins), np.float32)  # Σ v, same forgetting

    def process(self, y: np.ndarray) -> np.ndarray:
        """[T, F, 2, S] complex64 STFT frames of S stems in, their Wiener re-estimates out."""
        frames = y.shape[0]
        x = y.sum(axis=-1)  # [T, F, 2]
        v = np.mean(y.real ** 2 + y.imag ** 2, axis=2)  # [T, F, S]
        decay = (self.forget ** np.arange(frames - 1, -1, -1)).astype(np.float32)  # the newest weighs 1
        self._cov *= self.forget ** frames
        self._cov += np.einsum("tfcs,tfds->sfcd", y * decay[:, None, None, None], np.conj(y))
        self._weight *= self.forget ** frames
        self._weight += np.einsum("t,tfs->sf", decay, v)
        spatial = self._cov / (EPS + self._weight)[..., None, None]  # R_j [S, F, 2, 2]
        images = v.transpose(2, 0, 1)[..., None, None] * spatial[:, None]  # v_j R_j [S, T, F, 2, 2]
        # Σ v_k R_k [T, F, 2, 2] inverted in float64: for a centred (mono) mix it is nearly rank one,
        # and its determinant would cancel to zero in float32.
        mixture = images.sum(axis=0, dtype=np.complex128)
        load = REG + LOADING * np.real(mixture[..., 0, 0] + mixture[..., 1, 1])
        a, b = mixture[..., 0, 0] + load, mixture[..., 0, 1]
        c, d = mixture[..., 1, 0], mixture[..., 1, 1] + load
        z = np.stack([d * x[..., 0] - b * x[..., 1], a * x[..., 1] - c * x[..., 0]], axis=-1)
        z /= (a * d - b * c)[..., None]
        return np.einsum("stfcd,tfd->tfcs", images, z.astype(np.complex64))
