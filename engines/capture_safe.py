"""HTDemucs made safe for CUDA-graph capture and for torch.compile's CUDA graphs, and a probe that
proves it on any machine.

A captured graph (and Inductor's `reduce-overhead` mode) may hold only device work: one host copy or
host sync inside the forward invalidates a capture (`cudaErrorStreamCaptureInvalidated`) or makes
Inductor skip its CUDA graphs. demucs-onnx's `patch_htdemucs_for_onnx` removes the complex STFT
(its window is built on the host every call), the `Fraction` segment and the random shift; three
host round trips remain, found with `host_traffic` below:

- `create_2d_sin_embedding` (the cross-transformer's 2-D positional embedding) is computed on the
  CPU and copied to the device on every call;
- the iSTFT's overlap-add envelope (`RealISTFT._envelope`) is computed on the CPU, with a Python loop
  over frames, the first time a shape is seen;
- demucs-onnx's attention asks `torch.equal(query, key)` on every call: a device-to-host sync
  whenever the two are distinct tensors of one shape (CUDA answers aliases and shape mismatches
  without one), and a graph break for torch.compile in every case.

The first two are rebuilt here from device tensor ops, and attention becomes one
`scaled_dot_product_attention` call (fused kernels on the GPU, no branch on values), so the forward
is device-only from its first call: capture needs no warm-up to fill caches, and torch.compile
traces no CPU ops, Python loops or graph breaks. Under fp16 / bf16 autocast the STFT and iSTFT
convolutions stay in fp32, as torch.stft does in the stock model.
`host_traffic` runs a forward on the `meta` device and reports every operation that touches a CPU
tensor or asks for a host value, which is exactly what a capture cannot hold; tests run it on the CPU.
"""

from __future__ import annotations

import copy
import math
import types

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode


def device_2d_sin_embedding(d_model: int, height: int, width: int, device: torch.device | str = "cpu",
                            max_period: float = 10000) -> torch.Tensor:
    """demucs.transformer.create_2d_sin_embedding computed on `device` (same values, [1, C, H, W]):
    width positions fill the first half of the channels, height positions the second, sin/cos
    interleaved."""
    if d_model % 4 != 0:
        raise ValueError(f"Cannot use sin/cos positional encoding with odd dimension (got dim={d_model})")
    half = d_model // 2
    div_term = torch.exp(torch.arange(0.0, half, 2, device=device) * -(math.log(max_period) / half))
    angle_w = torch.arange(0.0, width, device=device)[None, :] * div_term[:, None]  # [half/2, W]
    angle_h = torch.arange(0.0, height, device=device)[None, :] * div_term[:, None]  # [half/2, H]
    by_width = torch.stack((torch.sin(angle_w), torch.cos(angle_w)), 1).reshape(half, 1, width)
    by_height = torch.stack((torch.sin(angle_h), torch.cos(angle_h)), 1).reshape(half, height, 1)
    return torch.cat((by_width.expand(half, height, width), by_height.expand(half, height, width)))[None]


def _device_envelope(self, n_frames: int, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """RealISTFT's overlap-add envelope (the sum of squared Hann windows under every frame) as one
    transposed convolution on the device, instead of a host loop over frames."""
    win_sq = torch.hann_window(self.n_fft, periodic=True, device=device, dtype=torch.float32) ** 2
    ones = torch.ones(1, 1, n_frames, device=device, dtype=torch.float32)
    env = F.conv_transpose1d(ones, win_sq[None, None], stride=self.hop_length)[0, 0]
    pad = self.n_fft // 2
    return torch.clamp(env[pad:pad + length], min=1e-11).to(dtype)


def sdpa_attention_forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           key_padding_mask: torch.Tensor | None = None, need_weights: bool = False,
                           attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                           is_causal: bool = False) -> tuple[torch.Tensor, None]:
    """nn.MultiheadAttention.forward for the calls HTDemucs makes (no masks, no weights returned,
    one embedding size for query, key and value), as `scaled_dot_product_attention`."""
    if key_padding_mask is not None or attn_mask is not None or is_causal:
        raise ValueError("the capture-safe attention takes no masks (HTDemucs passes none)")
    if not self.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    w_q, w_k, w_v = self.in_proj_weight.chunk(3)
    b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
    batch, heads = query.shape[0], self.num_heads

    def split_heads(t: torch.Tensor) -> torch.Tensor:  # [B, T, E] -> [B, H, T, E/H]
        return t.reshape(batch, t.shape[1], heads, -1).transpose(1, 2)

    q, k, v = (split_heads(F.linear(t, w, b)) for t, w, b in ((query, w_q, b_q), (key, w_k, b_k), (value, w_v, b_v)))
    out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, q.shape[2], -1)
    out = F.linear(out, self.out_proj.weight, self.out_proj.bias)
    return (out if self.batch_first else out.transpose(0, 1)), None


def _forward_in_fp32(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """The module's own forward with autocast off and its input in fp32: the STFT and iSTFT here are
    convolutions with 4096-sample DFT kernels, whose fp16 / bf16 sums lose the quiet bins (torch.stft,
    which they replace, is outside autocast's lists and stays fp32 too). Bound with MethodType, so a
    deep copy of the model binds it to the copy."""
    forward = type(self).forward
    if not torch.amp.is_autocast_available(x.device.type):  # the meta device of host_traffic
        return forward(self, x.float(), *args, **kwargs)
    with torch.autocast(device_type=x.device.type, enabled=False):
        return forward(self, x.float(), *args, **kwargs)


def install_device_embedding() -> None:
    """Point demucs's cross-transformer at the device-side 2-D embedding (a module global it looks up
    on every call); the values are the same, so eager models are unaffected."""
    import demucs.transformer as transformer

    transformer.create_2d_sin_embedding = device_2d_sin_embedding


def capture_safe_htdemucs(model: torch.nn.Module) -> torch.nn.Module:
    """A patched copy of one HTDemucs (the original is left untouched) whose forward runs on the
    device alone: demucs-onnx's patches plus the three replacements above."""
    from demucs_onnx.export.patch import patch_htdemucs_for_onnx

    install_device_embedding()
    patched = patch_htdemucs_for_onnx(copy.deepcopy(model).float())
    patched.real_istft._envelope = types.MethodType(_device_envelope, patched.real_istft)
    for transform in (patched.real_stft, patched.real_istft):
        transform.forward = types.MethodType(_forward_in_fp32, transform)
    for module in patched.modules():
        if isinstance(module, torch.nn.MultiheadAttention):
            if not module._qkv_same_embed_dim:
                raise RuntimeError("capture-safe attention needs one embedding size for query, key and value")
            module.forward = types.MethodType(sdpa_attention_forward, module)
    patched.use_train_segment = False
    return patched.eval()


class _HostTraffic(TorchDispatchMode):
    """Records operations on `meta` tensors that also involve CPU tensors (a host copy, or a
    host-built constant), and operations that create CPU tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tensors = [t for t in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
        if any(t.device.type == "cpu" and t.dim() > 0 for t in tensors):
            shapes = ", ".join(f"{t.device.type}{list(t.shape)}" for t in tensors[:4])
            self.found.append(f"{func} ({shapes})")
        return out


def host_traffic(model: torch.nn.Module, window_samples: int, batch: int = 1) -> list[str]:
    """Every operation of one forward of `model` (moved to a copy on the `meta` device, so it costs
    no memory and no arithmetic) that a CUDA graph could not capture: CPU tensors touched, and any
    host sync (which raises on `meta` and is reported as such). An empty list means capture-safe."""
    probe = copy.deepcopy(model).to("meta")
    mix = torch.empty(batch, 2, window_samples, device="meta")
    mode = _HostTraffic()
    try:
        with torch.inference_mode(), mode:
            probe(mix)
    except (RuntimeError, NotImplementedError) as exc:  # .item() / bool(tensor) on meta: a host sync
        mode.found.append(f"host sync: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return mode.found
