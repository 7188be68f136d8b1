"""The refiner on demand (the design's "GSN cleanup"): per-stem `clean` (multichannel Wiener
re-masking across all stems, against bleed) and `dereverb` (online WPE), or `off`, applied to the
streamed stems after separation."""

from stemd.engines.refine.refiner import Refiner

__all__ = ["Refiner"]
