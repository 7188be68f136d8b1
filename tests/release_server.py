"""A release folder served over HTTP on 127.0.0.1 (a free port), standing in for Deezer's GitHub
release: `stemd models fetch spleeter4 --release-url` downloads from it exactly as from the real one."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


RELEASES = "deezer/spleeter/releases/download"  # the path GithubModelProvider builds under its host


class ReleaseServer:
    """Serves `root`; release NAME is the folder root/deezer/spleeter/releases/download/NAME."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="release-server", daemon=True)

    def release_dir(self, release: str) -> Path:
        folder = self.root / RELEASES / release
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def url(self, release: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{RELEASES}/{release}"

    def __enter__(self) -> "ReleaseServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
