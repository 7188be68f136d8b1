"""Add a new separator backend: implement `Separator`, register a factory, stream it live.

    .venv/bin/python examples/custom_backend.py

`MidSide` is the oldest "karaoke" trick: what is identical in both channels (the mid) is called
vocals, what differs (the sides) accompaniment. It is not a good separator, but it is a complete
backend: the streaming engine gives it the same sliding window, hop, right context, crossfade and
resampling as HTDemucs or Spleeter, so the daemon, `stemd separate` and `stemd bench` could run it
unchanged once its factory is in `engines/registry.py`'s MODELS.
"""

from __future__ import annotations

import numpy as np

from stemd.engines import registry
from stemd.engines.separator import Separator, StreamingDefaults
from stemd.engines.streaming import StreamingSeparator


class MidSide(Separator):
    name = "midside"
    sources = ["vocals", "accompaniment"]
    sample_rate = 44100  # the model rate; the engine resamples the JACK rate to it and back
    streaming = StreamingDefaults(window_s=0.2, hop_s=0.05, right_s=0.02)

    def separate(self, window: np.ndarray) -> np.ndarray:
        """[2, N] float32 -> [2 sources, 2, N]: the mid in both channels, the rest as the sides."""
        mid = window.mean(axis=0, keepdims=True)
        stems = np.empty((2, 2, window.shape[1]), np.float32)
        stems[0] = mid
        stems[1] = window - mid
        return stems


def main() -> None:
    registry.MODELS["midside"] = lambda **options: MidSide()  # how the real registry names a backend
    separator = registry.load_separator("midside", device="cpu")
    jack_rate, period = 48000, 256
    stream = StreamingSeparator(separator, jack_rate)
    print(f"{separator.describe()}: latency {1000 * stream.latency_samples / jack_rate:.1f} ms, "
          f"geometry {stream.geometry.seconds()}")

    t = np.arange(jack_rate) / jack_rate
    centre = sum(0.1 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 6)).astype(np.float32)  # a mono "voice"
    sides = np.stack([0.05 * np.sin(2 * np.pi * 330 * t), -0.05 * np.sin(2 * np.pi * 330 * t)])  # wide "accompaniment"
    music = (centre + sides).astype(np.float32)
    out = np.concatenate([stream.process(music[:, i:i + period]) for i in range(0, jack_rate, period)], axis=-1)
    lag = stream.latency_samples
    steady = slice(lag + jack_rate // 4, music.shape[1])  # after the warm-up, aligned with the input
    vocals = out[0, :, steady]
    truth = np.broadcast_to(centre[steady.start - lag:steady.stop - lag], vocals.shape)
    error_db = 10 * np.log10(np.mean((vocals - truth) ** 2) / np.mean(truth ** 2))
    print(f"streamed {music.shape[1]} frames in {period}-frame periods; vocals vs the true centre: "
          f"{error_db:.1f} dB error")


if __name__ == "__main__":
    main()
