"""Allow-list, per-client rate limit and the state folder, over real UDP on loopback addresses."""

import time

import pytest

from osc_harness import osc, start_server, surface  # noqa: F401 (fixtures)
from stemd.control.osc.security import AllowList, RateLimiter, state_file


def test_allow_list_matches_networks_and_mapped_addresses():
    allow = AllowList(["192.168.0.0/16", "::1/128"])
    assert allow.allows("192.168.4.20")
    assert allow.allows("::ffff:192.168.4.20")
    assert allow.allows("::1")
    assert not allow.allows("10.0.0.1")
    assert not allow.allows("not-an-address")
    assert allow.dropped == 2


def test_the_default_config_allows_loopback_only():
    from stemd.config import load_config

    allow = AllowList(load_config().osc.allow)
    assert allow.allows("127.0.0.1") and allow.allows("::1")
    assert not allow.allows("192.168.1.10")


def test_senders_outside_the_allow_list_are_dropped_silently_and_counted(osc, surface):
    # Linux routes all of 127.0.0.0/8 to loopback: 127.0.0.2 is a second, distinct client address.
    srv = osc(allow=["127.0.0.1/32"])
    trusted, stranger = surface(srv), surface(srv, bind="127.0.0.2")
    with pytest.raises(TimeoutError):
        stranger.ask("/stemd/stem/vocals/mute", 1, timeout=0.5)
    stranger.send_raw(b"\xff garbage")
    assert not stranger.collect(0.2)
    assert not srv.session.snapshot()["stems"]["vocals"]["muted"]
    assert trusted.ask("/stemd/stem/bass/mute", 1)[0] == "/stemd/ok"
    stats = srv.stats()
    assert stats["dropped_not_allowed"] == 2 and stats["received"] == 1


def test_rate_limit_is_per_client_and_tells_the_sender_once(osc, surface):
    srv = osc(rate_limit_per_s=20.0, meter_hz=0.0, allow=["127.0.0.1/32", "127.0.0.2/32"])
    flood, calm = surface(srv), surface(srv, bind="127.0.0.2")
    for i in range(100):
        flood.send("/stemd/stem/drums/gain_db", -float(i % 10))
    answers = flood.answers(100, timeout=1.0)
    ok = [a for a in answers if a[0] == "/stemd/ok"]
    limited = [a for a in answers if "rate limit" in a[1][0]]
    print(f"\n100 messages at once against 20/s: {len(ok)} applied, {len(limited)} rate-limit notice(s)")
    assert 20 <= len(ok) < 40 and len(limited) == 1  # the bucket's burst, plus what refilled meanwhile
    assert srv.stats()["dropped_rate_limited"] >= 50
    assert calm.ask("/stemd/status")[0] == "/stemd/status.reply"  # another client is unaffected
    time.sleep(0.5)  # the bucket refills at 20/s
    assert flood.ask("/stemd/stem/drums/mute", 1)[0] == "/stemd/ok"


def test_token_bucket_charges_bundles_per_message():
    limiter = RateLimiter(10.0)
    assert limiter.admit("a", 10) == (True, False)
    assert limiter.admit("a", 1) == (False, True)
    assert limiter.admit("a", 1) == (False, False)  # one notice a second, not one per message
    assert limiter.admit("b", 1) == (True, False)
    assert limiter.limited == 2


def test_state_file_never_leaves_the_state_folder(tmp_path):
    assert state_file(tmp_path, "osc-subscribers.json") == (tmp_path / "osc-subscribers.json").resolve()
    for name in ("../escape.json", "/etc/passwd", "sub/dir.json", "..", ""):
        with pytest.raises(ValueError):
            state_file(tmp_path, name)


def test_no_address_touches_files_outside_the_state_folder(tmp_path, surface):
    srv = start_server(tmp_path / "state")
    tablet = surface(srv)
    paths = ["../../escape", "/tmp/stemd-osc-escape", str(tmp_path / "escape"), "~/.bashrc"]
    try:
        for path in paths:
            for address in ("/stemd/intent", "/stemd/midi/learn", "/stemd/stem/vocals/refine"):
                assert tablet.ask(address, path)[0] == "/stemd/error"
        tablet.ask("/stemd/subscribe")
        tablet.ask("/stemd/status")
    finally:
        srv.stop()
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert written == ["state", "state/osc-subscribers.json"]


def test_rate_limit_table_stays_bounded_under_spoofed_sources():
    limiter = RateLimiter(5.0, max_clients=64)
    for i in range(1000):
        limiter.admit(f"10.0.{i // 256}.{i % 256}")
    assert limiter.clients <= 64
