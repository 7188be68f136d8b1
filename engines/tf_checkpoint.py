"""Reads TensorFlow v2 checkpoints (`<prefix>.index` + `<prefix>.data-*`) without TensorFlow.

Pretrained models such as Deezer's Spleeter ship only as TF checkpoints, and TensorFlow is a
multi-gigabyte dependency that would also pull its own numeric stack into the engine process. The
format is small and stable: the index is a LevelDB-format SSTable whose keys are tensor names and
whose values are `BundleEntryProto` messages (dtype, shape, shard, offset, size, masked crc32c); the
data shards are the raw little-endian tensor bytes. Every block and every tensor is checked against
its crc32c, so a truncated or corrupted download fails loudly instead of producing a silent,
plausible-sounding but wrong model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import crc32c
import numpy as np

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_LEN = 48
_BLOCK_TRAILER_LEN = 5
_MASK_DELTA = 0xA282EAD8

# tensorflow/core/framework/types.proto DataType -> numpy dtype (little-endian on disk).
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    17: np.dtype("<u2"),
    19: np.dtype("<f2"),
    22: np.dtype("<u4"),
    23: np.dtype("<u8"),
}


class CheckpointError(ValueError):
    """The checkpoint is malformed, corrupted, or uses a feature this reader does not support."""


def unmask_crc(masked: int) -> int:
    """Inverts LevelDB/TF's crc masking (rotate right 15 after subtracting the delta)."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decodes one protobuf message level into (field number, value) pairs, in wire order."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos : pos + length]
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    if pos != len(buf):
        raise CheckpointError("truncated protobuf message")
    return fields


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data shards (a decoded BundleEntryProto)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for number, value in _proto_fields(buf):
        if number == 2:
            size = next((v for n, v in _proto_fields(value) if n == 1), 0)
            dims.append(int(size))
        elif number == 3 and value:
            raise CheckpointError("tensor of unknown rank")
    return tuple(dims)


def _parse_entry(name: str, buf: bytes) -> TensorEntry:
    values: dict[int, int | bytes] = {}
    for number, value in _proto_fields(buf):
        if number == 7:
            raise CheckpointError(f"{name}: partitioned (sliced) tensors are not supported")
        values[number] = value
    dtype_code = int(values.get(1, 0))
    if dtype_code not in _DTYPES:
        raise CheckpointError(f"{name}: unsupported TF dtype {dtype_code}")
    return TensorEntry(
        name=name,
        dtype=_DTYPES[dtype_code],
        shape=_parse_shape(values.get(2, b"")),
        shard_id=int(values.get(3, 0)),
        offset=int(values.get(4, 0)),
        size=int(values.get(5, 0)),
        crc32c=unmask_crc(int(values.get(6, 0))),
    )


def _read_block(data: bytes, offset: int, size: int) -> bytes:
    end = offset + size
    if end + _BLOCK_TRAILER_LEN > len(data):
        raise CheckpointError("block handle points past the end of the index")
    block, compression = data[offset:end], data[end]
    (stored,) = struct.unpack_from("<I", data, end + 1)
    if crc32c.crc32c(data[offset : end + 1]) != unmask_crc(stored):
        raise CheckpointError(f"index block at {offset} fails its crc32c")
    if compression != 0:
        raise CheckpointError(f"index block at {offset} is compressed (type {compression})")
    return block


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Walks a block's prefix-compressed entries; the restart array only speeds up seeks."""
    if len(block) < 4:
        raise CheckpointError("index block too short")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 * (num_restarts + 1)
    if limit < 0:
        raise CheckpointError("index block restart array overruns the block")
    entries, key, pos = [], b"", 0
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key):
            raise CheckpointError("index key shares more bytes than the previous key has")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_index(index_path: str | Path) -> dict[str, TensorEntry]:
    """Parses `<prefix>.index` into tensor entries keyed by variable name, in key order."""
    data = Path(index_path).read_bytes()
    if len(data) < _FOOTER_LEN:
        raise CheckpointError(f"{index_path}: too short to be a checkpoint index")
    footer = data[-_FOOTER_LEN:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_LEN - 8)
    if magic != _TABLE_MAGIC:
        raise CheckpointError(f"{index_path}: not an SSTable (bad magic)")
    _, pos = _varint(footer, 0)
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)

    entries: dict[str, TensorEntry] = {}
    header_seen = False
    for _, handle in _block_entries(_read_block(data, index_offset, index_size)):
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
        for key, value in _block_entries(_read_block(data, offset, size)):
            if key == b"":
                _check_header(index_path, value)
                header_seen = True
                continue
            name = key.decode()
            entries[name] = _parse_entry(name, value)
    if not header_seen:
        raise CheckpointError(f"{index_path}: no bundle header")
    return entries


def _check_header(index_path: str | Path, buf: bytes) -> None:
    """BundleHeaderProto: num_shards (1), endianness (2, 0 = little)."""
    fields = dict(_proto_fields(buf))
    if fields.get(2, 0) != 0:
        raise CheckpointError(f"{index_path}: big-endian checkpoints are not supported")


class Checkpoint:
    """A TF v2 checkpoint opened for reading: `entries` from the index, tensors on demand."""

    def __init__(self, prefix: str | Path) -> None:
        self.prefix = Path(prefix)
        index = self.prefix.with_name(self.prefix.name + ".index")
        if not index.is_file():
            raise FileNotFoundError(f"no checkpoint index at {index}")
        self.entries = read_index(index)
        shard_ids = {e.shard_id for e in self.entries.values()}
        num_shards = max(shard_ids, default=0) + 1
        self._shards = [
            self.prefix.with_name(f"{self.prefix.name}.data-{i:05d}-of-{num_shards:05d}")
            for i in range(num_shards)
        ]
        self._data: dict[int, bytes] = {}

    def _shard(self, shard_id: int) -> bytes:
        if shard_id not in self._data:
            self._data[shard_id] = self._shards[shard_id].read_bytes()
        return self._data[shard_id]

    def read(self, name: str) -> np.ndarray:
        """Returns the tensor as a fresh native-endian array, after checking size and crc32c."""
        entry = self.entries[name]
        expected = entry.num_elements * entry.dtype.itemsize
        if entry.size != expected:
            raise CheckpointError(f"{name}: {entry.size} bytes stored, shape needs {expected}")
        raw = self._shard(entry.shard_id)[entry.offset : entry.offset + entry.size]
        if len(raw) != entry.size:
            raise CheckpointError(f"{name}: data shard ends before the tensor does")
        if crc32c.crc32c(raw) != entry.crc32c:
            raise CheckpointError(f"{name}: crc32c mismatch (corrupted checkpoint)")
        return np.frombuffer(raw, dtype=entry.dtype).astype(entry.dtype.newbyteorder("="))\
            .reshape(entry.shape)

    def read_all(self) -> dict[str, np.ndarray]:
        return {name: self.read(name) for name in self.entries}

    def data_bytes(self) -> int:
        return sum(path.stat().st_size for path in self._shards)
