"""The web remote: a page served by the daemon over HTTP, its state pushed over WebSocket."""

from stemd.control.web.server import WebRemote

__all__ = ["WebRemote"]
