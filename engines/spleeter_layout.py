"""The variables Spleeter's TF graph stores for N instruments: names, TF shapes, creation order.

Keras names layers by a per-graph counter in creation order, so which tensor belongs to which layer
of which U-Net follows from `spleeter.model.functions.unet.apply_unet` alone: per instrument 7 Conv2D
(conv2d_{7n}..), 12 BatchNormalization (batch_normalization_{12n}..) and 6 Conv2DTranspose
(conv2d_transpose_{6n}..), created as conv1, bn1, .., conv6, bn6, deconv1, bn7, .., deconv6, bn12,
final conv. `graph_variables` is checked against the list Spleeter's own code builds
(tests/fixtures/spleeter_graph_variables.json, made by scripts/spleeter_graph_variables.py), and the
PyTorch port fills its parameters from them (`Variable.target`).

Only numpy is imported: the fixture script loads this file inside a throwaway TensorFlow venv.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ENCODER_FILTERS = [16, 32, 64, 128, 256, 512]
N_CHANNELS = 2
KERNEL = 5
MASK_KERNEL = 4
BN_PARAMETERS = ("gamma", "beta", "moving_mean", "moving_variance")
GLOBAL_STEP = "global_step"  # written by spleeter's trainer; in every released checkpoint (int64)
CONVS_PER_UNET, DECONVS_PER_UNET, NORMS_PER_UNET = 7, 6, 12
UNUSED_NORM = 5  # the bottleneck norm: built, stored, never read (the decoder starts from conv6)


def tf_name(layer: str, index: int) -> str:
    """Keras's unique layer name: `conv2d`, `conv2d_1`, ..."""
    return layer if index == 0 else f"{layer}_{index}"


@dataclass(frozen=True)
class Variable:
    """One stored variable: TF name and shape, and the PyTorch SpleeterUNet parameter it fills
    (None: stored, never read). Conversions: "conv" [kh, kw, in, out] -> [out, in, kh, kw];
    "deconv" [kh, kw, out, in] -> [in, out, kh, kw] (both one transpose); "copy" as is."""

    name: str
    shape: tuple[int, ...]
    target: str | None
    conversion: str = "copy"


def _conv(index: int, cin: int, cout: int, kernel: int, module: str) -> list[Variable]:
    name = tf_name("conv2d", index)
    return [Variable(f"{name}/kernel", (kernel, kernel, cin, cout), f"{module}.weight", "conv"),
            Variable(f"{name}/bias", (cout,), f"{module}.bias")]


def _deconv(index: int, cin: int, cout: int, module: str) -> list[Variable]:
    name = tf_name("conv2d_transpose", index)
    return [Variable(f"{name}/kernel", (KERNEL, KERNEL, cout, cin), f"{module}.weight", "deconv"),
            Variable(f"{name}/bias", (cout,), f"{module}.bias")]


def _norm(index: int, channels: int, module: str | None) -> list[Variable]:
    name = tf_name("batch_normalization", index)
    return [Variable(f"{name}/{p}", (channels,), module and f"{module}.{ours}")
            for p, ours in zip(BN_PARAMETERS, ("weight", "bias", "running_mean", "running_var"))]


def unet_variables(net: int) -> list[Variable]:
    """U-Net number `net`'s variables in the order apply_unet creates them."""
    out: list[Variable] = []
    cin = N_CHANNELS
    for i, cout in enumerate(ENCODER_FILTERS):
        norm = None if i == UNUSED_NORM else f"encoder_norms.{i}"
        out += _conv(CONVS_PER_UNET * net + i, cin, cout, KERNEL, f"encoder.{i}")
        out += _norm(NORMS_PER_UNET * net + i, cout, norm)
        cin = cout
    decoder_out = ENCODER_FILTERS[-2::-1] + [1]  # 256, 128, 64, 32, 16, 1
    decoder_in = [ENCODER_FILTERS[-1]] + [2 * c for c in decoder_out[:-1]]
    for i, (dcin, dcout) in enumerate(zip(decoder_in, decoder_out)):
        out += _deconv(DECONVS_PER_UNET * net + i, dcin, dcout, f"decoder.{i}")
        out += _norm(NORMS_PER_UNET * net + len(ENCODER_FILTERS) + i, dcout, f"decoder_norms.{i}")
    return out + _conv(CONVS_PER_UNET * net + CONVS_PER_UNET - 1, 1, N_CHANNELS, MASK_KERNEL, "mask")


def graph_variables(instruments: int) -> list[Variable]:
    """Every variable of the predict graph for `instruments` U-Nets, in creation order."""
    return [v for net in range(instruments) for v in unet_variables(net)]


def checkpoint_variables(instruments: int) -> list[Variable]:
    """What a released checkpoint holds: the graph's variables and the trainer's step."""
    return graph_variables(instruments) + [Variable(GLOBAL_STEP, (), None)]


def random_tensors(instruments: int, seed: int) -> dict[str, np.ndarray]:
    """Checkpoint values in spleeter's layout that keep activations in range (fan-in-scaled kernels,
    small biases, unit-ish norms), drawn in creation order so any numpy version draws the same."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {GLOBAL_STEP: np.array(0, dtype=np.int64)}
    for variable in graph_variables(instruments):
        name, shape = variable.name, variable.shape
        kind = name.rsplit("/", 1)[-1]
        if kind == "kernel":
            fan_in = shape[0] * shape[1] * (shape[3] if "transpose" in name else shape[2])
            value = rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)
        elif kind in ("gamma", "moving_variance"):
            value = 1.0 + 0.1 * rng.random(shape)
        else:
            value = 0.05 * rng.standard_normal(shape)
        out[name] = value.astype(np.float32)
    return out
