"""The web remote over real HTTP and WebSockets: controls, pushed state, and every refusal it counts."""

import asyncio

import aiohttp
import pytest

from web_harness import Page, base_url, open_page, remote, run, with_page  # noqa: F401 (fixture)
from stemd.control.commands import Command
from stemd.control.osc.fader import position_to_db
from stemd.control.web.gate import WebConfigError


def test_page_is_served_with_its_safety_headers(remote):
    server = remote()

    async def scenario():
        async with aiohttp.ClientSession() as http:
            for path, kind in (("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css")):
                async with http.get(base_url(server) + path) as r:
                    assert r.status == 200 and r.content_type == kind
                    assert r.headers["Referrer-Policy"] == "no-referrer" and "default-src 'self'" in r.headers[
                        "Content-Security-Policy"]
            async with http.get(base_url(server) + "/../config.toml") as r:
                assert r.status == 404

    run(scenario())


def test_hello_then_state_then_a_button_is_applied_and_every_page_hears_it(remote):
    server = remote()

    async def scenario():
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(base_url(server) + "/ws")
            first = Page(ws)
            hello = await first.next("hello")
            assert hello["stems"] == ["vocals", "drums", "bass", "other"] and "drop the vocals" in hello["phrases"]
            state = await first.next("state")
            assert state["stems"]["vocals"] == {"muted": False, "soloed": False, "gain_db": 0.0, "position": 0.75,
                                                "loop": 0.0, "refine": "off"}
            other = await open_page(http, server)
            reply = await first.ask({"type": "command", "command": {"action": "mute", "stem": "vocals"}})
            assert reply["ok"] and reply["commands"] == [{"action": "mute", "stem": "vocals"}]
            assert server.session.mixer.snapshot()["stems"]["vocals"]["muted"]
            for page in (first, other):
                (event,) = (await page.next("applied"))["entries"]
                assert event["commands"] == [{"action": "mute", "stem": "vocals"}]
                assert event["source"].startswith("web:127.0.0.1:")
                await page.state_until(lambda s: s["stems"]["vocals"]["muted"])

    run(scenario())


def test_fader_is_the_osc_curve_both_ways(remote):
    server = remote()

    async def scenario(http, page):
        reply = await page.ask({"type": "fader", "stem": "bass", "position": 0.375})
        assert reply["ok"]
        db = server.session.mixer.snapshot()["stems"]["bass"]["gain_db"]
        assert db == pytest.approx(position_to_db(0.375, 12.0)) and db == pytest.approx(-12.04, abs=0.01)
        state = await page.state_until(lambda s: s["stems"]["bass"]["gain_db"] < 0)
        assert state["stems"]["bass"]["position"] == pytest.approx(0.375, abs=1e-3)
        assert (await page.ask({"type": "fader", "stem": "all", "position": 1.0}))["ok"]
        await page.state_until(lambda s: s["master"]["gain_db"] == 12.0)

    with_page(server, scenario)


def test_typed_sentence_is_parsed_applied_and_answered(remote):
    server = remote()

    async def scenario(http, page):
        reply = await page.ask({"type": "intent", "text": "drop the vocals"}, timeout=30)
        assert reply["ok"] and reply["commands"] == [{"action": "mute", "stem": "vocals"}]
        (event,) = (await page.next("applied"))["entries"]
        assert event["text"] == "drop the vocals"
        refused = await page.ask({"type": "intent", "text": "make it sound like a kazoo orchestra"}, timeout=30)
        assert not refused["ok"] and refused["error"]

    with_page(server, scenario)


def test_change_from_another_source_is_pushed(remote):
    server = remote()

    async def scenario(http, page):
        await asyncio.to_thread(server.session.submit, [Command("solo", stem="drums")], "midi")
        (event,) = (await page.next("applied"))["entries"]
        assert event["source"] == "midi" and event["commands"] == [{"action": "solo", "stem": "drums"}]
        await page.state_until(lambda s: s["stems"]["drums"]["soloed"])
        levels = await page.next("levels")
        assert set(levels["levels"]) == {"vocals", "drums", "bass", "other"}

    with_page(server, scenario)


def test_impossible_asks_are_answered_and_the_socket_stays(remote):
    server = remote(parser=False)

    async def scenario(http, page):
        for message, reason in (
            ({"type": "launch"}, "unknown message type"),
            ({"type": "fader", "stem": "bass", "position": 2}, "0..1"),
            ({"type": "command", "command": {"action": "mute", "stem": "kazoo"}}, "unknown stem"),
            ({"type": "command", "command": {"action": "explode"}}, "unknown action"),
            ({"type": "intent", "text": ""}, "non-empty"),
            ({"type": "intent", "text": "drop the vocals"}, "not available"),
            ({"type": "tap"}, "not available"),
        ):
            reply = await page.ask(message)
            assert not reply["ok"] and reason in reply["error"], (message, reply)
        assert (await page.ask({"type": "command", "command": {"action": "reset"}}))["ok"]
        assert server.stats()["errors"] == 7 and server.stats()["malformed"] == 0

    with_page(server, scenario)


def test_malformed_and_oversized_messages_close_only_that_socket(remote):
    server = remote(max_message_bytes=1024)

    async def scenario():
        async with aiohttp.ClientSession() as http:
            bystander = await open_page(http, server)
            for bad in ("not json", "[1, 2]", '"a string"', "[" * 1000):
                page = await open_page(http, server)
                await page.ws.send_str(bad)
                assert await page.closed() == aiohttp.WSCloseCode.UNSUPPORTED_DATA, bad
            page = await open_page(http, server)
            await page.ws.send_bytes(b"\x00\x01")
            assert await page.closed() == aiohttp.WSCloseCode.UNSUPPORTED_DATA
            page = await open_page(http, server)
            await page.ws.send_str('{"type": "intent", "text": "' + "x" * 2000 + '"}')
            assert await page.closed() == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
            assert (await bystander.ask({"type": "command", "command": {"action": "mute", "stem": "bass"}}))["ok"]
            stats = server.stats()
            assert stats["malformed"] == 5 and stats["oversized"] == 1 and stats["pages"] == 1

    run(scenario())


def test_rate_limit_per_socket_tells_once_and_drops(remote):
    server = remote(rate_limit_per_s=5.0)

    async def scenario(http, page):
        calm = await open_page(http, server)
        for _ in range(40):
            await page.send({"type": "command", "command": {"action": "unmute", "stem": "bass"}})
        replies = []
        try:
            while True:
                replies.append(await page.next("reply", timeout=1.0))
        except TimeoutError:
            pass
        ok = [r for r in replies if r["ok"]]
        limited = [r for r in replies if not r["ok"]]
        assert 5 <= len(ok) <= 12 and len(limited) == 1 and "rate limit" in limited[0]["error"]
        assert server.stats()["rate_limited"] == 40 - len(ok)
        assert (await calm.ask({"type": "command", "command": {"action": "mute", "stem": "drums"}}))["ok"]
        await asyncio.sleep(1.0)
        assert (await page.ask({"type": "command", "command": {"action": "mute", "stem": "bass"}}))["ok"]

    with_page(server, scenario)


def test_token_and_network_gate_every_request_with_403(remote):
    server = remote(token="s3cret")
    outside = remote(allow=["10.0.0.0/8"], token="s3cret")

    async def scenario():
        async with aiohttp.ClientSession() as http:
            url = base_url(server)
            for query in ("", "?token=wrong", "?token=s3cre", "?token=s3cret%00"):
                async with http.get(f"{url}/{query}") as r:
                    assert r.status == 403, query
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(f"{url}/ws{query}")
                assert refused.value.status == 403
            async with http.get(f"{url}/?token=s3cret") as r:
                assert r.status == 200
            await open_page(http, server, "?token=s3cret")
            assert server.stats()["forbidden"] == 8
            async with http.get(f"{base_url(outside)}/?token=s3cret") as r:
                assert r.status == 403  # 127.0.0.1 is not in 10.0.0.0/8
            assert outside.stats()["forbidden"] == 1

    run(scenario())


def test_lan_without_token_is_refused_at_start():
    from web_harness import start_remote

    with pytest.raises(WebConfigError, match="token"):
        start_remote(allow=["127.0.0.0/8", "192.168.0.0/16"])


def test_other_sites_and_rebound_names_are_refused(remote):
    server = remote()

    async def scenario():
        async with aiohttp.ClientSession() as http:
            url = base_url(server)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{url}/ws", headers={"Origin": "http://evil.example"})
            assert refused.value.status == 403
            host, port = server.address
            await open_page(http, server, headers={"Origin": f"http://{host}:{port}"})
            async with http.get(f"{url}/", headers={"Host": f"evil.example:{port}"}) as r:
                assert r.status == 403  # DNS rebinding: without a token only IP literals and localhost
            async with http.get(f"{url}/", headers={"Host": f"localhost:{port}"}) as r:
                assert r.status == 200
            assert server.stats()["forbidden"] == 2

    run(scenario())


def test_pages_beyond_max_clients_get_503(remote):
    server = remote(max_clients=2)

    async def scenario():
        async with aiohttp.ClientSession() as http:
            pages = [await open_page(http, server), await open_page(http, server)]  # held open
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(base_url(server) + "/ws")
            assert refused.value.status == 503 and server.stats()["refused_full"] == 1
            assert all(not p.ws.closed for p in pages)

    run(scenario())
