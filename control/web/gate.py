"""Who may open the web remote: the client's network, the shared token, and the counters of refusals.

A web page can change the mix, so the rules are the OSC server's (loopback by default, `[web] allow`
to widen it) plus one more: HTTP, unlike OSC, is reachable from any browser tab on the LAN, so any
allowed network beyond loopback needs `[web] token`, and the daemon refuses to start the remote
otherwise. Every refusal is a 403 (the same for a wrong network and a wrong token, so a scan learns
nothing) and is counted for `stemd status`.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Iterable

from stemd.control.osc.security import AllowList


class WebConfigError(ValueError):
    """`[web]` settings that would open the remote to the LAN without a token."""


def check_open_networks(allow: Iterable[str], token: str) -> None:
    """Refuse an allow-list beyond loopback without a token (raises WebConfigError naming the networks)."""
    wide = [n for n in allow if not ipaddress.ip_network(n, strict=False).is_loopback]
    if wide and not token:
        raise WebConfigError(
            f"[web] allow opens {', '.join(wide)} beyond loopback; set [web] token so a page on the LAN "
            "must carry it (http://HOST:PORT/?token=...)"
        )


class Gate:
    """Admits a request by client address and token; counts what it refused and why."""

    def __init__(self, allow: Iterable[str], token: str) -> None:
        allow = list(allow)
        check_open_networks(allow, token)
        self.allow = AllowList(allow)
        self._token = token.encode("utf-8")
        self.forbidden = 0

    def admits(self, host: str | None, token: str | None) -> bool:
        """True for an allowed host carrying the token (when one is set); counts every refusal."""
        allowed = host is not None and self.allow.allows(host)
        given = (token or "").encode("utf-8")
        # compare_digest always, so the answer's timing says nothing about how much of a token matched
        token_ok = hmac.compare_digest(given, self._token) if self._token else True
        if allowed and token_ok:
            return True
        self.forbidden += 1
        return False
