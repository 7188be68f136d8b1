"""`stemd models fetch spleeter4|spleeter5`: Deezer's released checkpoint archives, verified the way
spleeter's own `GithubModelProvider` verifies them, installed atomically into stemd's models folder.

Spleeter's provider downloads `<host>/<repository>/releases/download/<release>/<name>.tar.gz`, fetches
the release's `checksum.json` (a JSON object: archive name -> sha256 hex digest of the archive) from
the same place and refuses the archive when the digests differ; the archive holds the checkpoint
(`model.index`, `model.data-00000-of-00001`, plus TF's `checkpoint` and `model.meta`) at its top level.
stemd does the same, then also opens the unpacked checkpoint and checks it has exactly the variables
spleeter's graph has for that model before anything is moved into place. Every step works in a
temporary folder beside the target, and only the finished, checked folder is renamed into place, so
a broken, truncated or mismatched download leaves nothing behind (and an older install untouched).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .registry import ModelNotAvailable
from .spleeter_models import CHECKPOINT_SUFFIXES, SpleeterConfig, check_layout, checkpoint_dir
from .tf_checkpoint import Checkpoint, CheckpointError

# GithubModelProvider's defaults: DEFAULT_HOST / DEFAULT_REPOSITORY / RELEASE_PATH / LATEST_RELEASE.
RELEASE_URL = "https://github.com/deezer/spleeter/releases/download/v1.4.0"
CHECKSUM_INDEX = "checksum.json"
PROBE = ".probe"  # spleeter writes it once a model folder is complete; stemd does too
CHUNK = 1 << 20
TIMEOUT_S = 60.0


class FetchFailed(ModelNotAvailable):
    """The download, its verification or its unpacking failed; nothing was installed."""


def _open(url: str):
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except (urllib.error.URLError, OSError) as exc:
        raise FetchFailed(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from exc


def expected_checksum(release_url: str, archive: str) -> str:
    """The release's published sha256 for `archive` (GithubModelProvider.checksum)."""
    url = f"{release_url}/{CHECKSUM_INDEX}"
    with _open(url) as response:
        try:
            index = json.loads(response.read())
        except ValueError as exc:
            raise FetchFailed(f"{url} is not a JSON checksum index: {exc}") from exc
    if not isinstance(index, dict) or archive not in index:
        raise FetchFailed(f"{url} has no checksum for {archive}")
    return str(index[archive]).lower()


def _download(url: str, path: Path) -> str:
    """Streams `url` into `path`; returns the sha256 hex digest of what arrived."""
    digest = hashlib.sha256()
    with _open(url) as response, path.open("wb") as out:
        try:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        except OSError as exc:
            raise FetchFailed(f"download of {url} broke off: {exc}") from exc
    return digest.hexdigest()


def _unpack(archive: Path, folder: Path, url: str) -> None:
    """Extracts regular files only (the "data" filter: no links, devices or paths outside `folder`)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FetchFailed(f"{url} is not a complete .tar.gz archive: {exc}") from exc


def check_checkpoint(config: SpleeterConfig, folder: Path) -> None:
    """The unpacked checkpoint is `config`'s (`check_layout`), its data shard exactly as long as the
    index says (the index's crc32c is checked on reading)."""
    missing = [f"model{s}" for s in CHECKPOINT_SUFFIXES if not (folder / f"model{s}").is_file()]
    if missing:
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise CheckpointError(f"the archive has no {missing[0]} at its top level (it has {found})")
    checkpoint = Checkpoint(folder / "model")
    check_layout(checkpoint, config)
    size = sum(e.size for e in checkpoint.entries.values())
    if checkpoint.data_bytes() != size:
        raise CheckpointError(f"model.data-00000-of-00001 has {checkpoint.data_bytes()} bytes, the index needs {size}")


def fetch(config: SpleeterConfig, release_url: str = RELEASE_URL, target: Path | None = None) -> Path:
    """Downloads, verifies and installs `config`'s checkpoint into `target` (default: its folder in
    stemd's models folder); returns that folder. FetchFailed says what went wrong; then nothing new
    is on disk."""
    folder = target or checkpoint_dir(config)
    release_url = release_url.rstrip("/")
    url = f"{release_url}/{config.release}.tar.gz"
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-fetch-", dir=folder.parent))
    try:
        expected = expected_checksum(release_url, config.release)
        archive = work / f"{config.release}.tar.gz"
        got = _download(url, archive)
        if got != expected:
            raise FetchFailed(f"{url}: sha256 {got} does not match {expected} in {CHECKSUM_INDEX} (the "
                              "download is corrupted or not the released file)")
        unpacked = work / config.release
        unpacked.mkdir()
        _unpack(archive, unpacked, url)
        try:
            check_checkpoint(config, unpacked)
        except CheckpointError as exc:
            raise FetchFailed(f"{url}: {exc}") from exc
        (unpacked / PROBE).write_text("OK")
        if folder.exists():
            folder.rename(work / "previous")  # removed with `work` once the new one is in place
        unpacked.rename(folder)
    except FetchFailed as exc:
        raise FetchFailed(f"{exc}; nothing was installed in {folder}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder
