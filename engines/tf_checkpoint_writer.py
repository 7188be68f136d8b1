"""Writes TensorFlow v2 checkpoints (`<prefix>.index` + `<prefix>.data-00000-of-00001`) without
TensorFlow, in the layout `tf_checkpoint` reads and TF's own BundleWriter produces.

A model whose weights cannot be downloaded here (Spleeter 4/5 stems) is still tested, benchmarked
and run end to end through its real loading path on a checkpoint in the real on-disk format filled
with random values. The index is an SSTable with one data block (every entry a restart point, which
LevelDB readers accept), an empty metaindex block, an index block and the 48-byte footer; each block
and each tensor carries its masked crc32c.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import crc32c
import numpy as np

from .tf_checkpoint import _DTYPES, _FOOTER_LEN, _MASK_DELTA, _TABLE_MAGIC

_DTYPE_CODES = {dtype: code for code, dtype in _DTYPES.items()}


def mask_crc(crc: int) -> int:
    """LevelDB/TF's crc masking: rotate right 15, add the delta (inverse of `unmask_crc`)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _entry_proto(dtype: np.dtype, shape: tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    """BundleEntryProto: dtype (1), shape (2: TensorShapeProto, dim (2) {size (1)}), shard_id (3,
    0 omitted), offset (4), size (5), crc32c (6, fixed32)."""
    dims = b"".join(_field_bytes(2, _field_varint(1, d)) for d in shape)
    out = _field_varint(1, _DTYPE_CODES[dtype]) + _field_bytes(2, dims)
    if offset:
        out += _field_varint(4, offset)
    return out + _field_varint(5, size) + _varint(6 << 3 | 5) + struct.pack("<I", mask_crc(crc))


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    body, restarts = bytearray(), []
    for key, value in entries:
        restarts.append(len(body))
        body += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
    restarts = restarts or [0]
    return bytes(body) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def _with_trailer(block: bytes) -> bytes:
    return block + b"\0" + struct.pack("<I", mask_crc(crc32c.crc32c(block + b"\0")))


def write_checkpoint(prefix: str | Path, tensors: dict[str, np.ndarray]) -> None:
    """Writes `tensors` (name -> array of a dtype TF checkpoints hold) as a one-shard checkpoint."""
    prefix = Path(prefix)
    data = bytearray()
    entries = [(b"", _field_varint(1, 1) + _field_bytes(3, _field_varint(1, 1)))]  # num_shards, version
    for name in sorted(tensors, key=str.encode):
        array = np.asarray(tensors[name])  # tobytes() is C order; ascontiguousarray would make 0-d 1-d
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == "=" else array.dtype
        raw = array.astype(dtype).tobytes()
        entries.append((name.encode(), _entry_proto(dtype, array.shape, len(data), len(raw), crc32c.crc32c(raw))))
        data += raw
    index = bytearray()
    data_block = _with_trailer(_block(entries))
    index += data_block
    meta_offset = len(index)
    meta_block = _with_trailer(_block([]))
    index += meta_block
    index_offset = len(index)
    last_key = entries[-1][0]
    handle = _varint(0) + _varint(len(data_block) - 5)
    index_block = _with_trailer(_block([(last_key, handle)]))
    index += index_block
    footer = (_varint(meta_offset) + _varint(len(meta_block) - 5)
              + _varint(index_offset) + _varint(len(index_block) - 5))
    index += footer.ljust(_FOOTER_LEN - 8, b"\0") + struct.pack("<Q", _TABLE_MAGIC)
    _write(prefix.with_name(prefix.name + ".data-00000-of-00001"), bytes(data))
    _write(prefix.with_name(prefix.name + ".index"), bytes(index))


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
