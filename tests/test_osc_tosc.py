"""The shipped current-TouchOSC layout (.tosc): regenerates byte for byte, decompresses to `lexml`, and
every control's OSC path and arguments are ones the live server answers or its feedback pushes."""

import xml.etree.ElementTree as ET
import zlib

import pytest

from osc_harness import osc, pushed_after_changes, surface  # noqa: F401 (fixtures)
from stemd.control.osc.tosc_layout import DEFAULT_OUT, write
from stemd.control.phrases import load_phrases

CONVERT = {"FLOAT": float, "INTEGER": lambda v: int(round(float(v))), "STRING": str}


def nodes(path):
    root = ET.fromstring(zlib.decompress(path.read_bytes()))
    assert root.tag == "lexml" and root.get("version") == "3"
    (document,) = root.findall("node")
    assert document.get("type") == "GROUP"
    return list(document.iter("node"))


def props(node):
    return {p.findtext("key"): p.find("value") for p in node.find("properties")}


def messages(node):
    """(send, receive, trigger condition, path, [(partial type, conversion, value, lo, hi)]) per OSC message."""
    out = []
    for osc_ in node.iterfind("messages/osc"):
        (path,) = osc_.findall("path/partial")
        assert path.findtext("type") == "CONSTANT" and path.findtext("conversion") == "STRING"
        args = [(p.findtext("type"), p.findtext("conversion"), p.findtext("value"),
                 float(p.findtext("scaleMin")), float(p.findtext("scaleMax"))) for p in osc_.iterfind("arguments/partial")]
        out.append((osc_.findtext("send") == "1", osc_.findtext("receive") == "1",
                    osc_.findtext("triggers/trigger/condition"), path.findtext("value"), args))
    return out


def sent_values(condition, args):
    """The argument lists a control sends: a press only (RISE), or both ends of its travel (ANY)."""
    for x in ((1.0,) if condition == "RISE" else (1.0, 0.0)):
        yield [CONVERT[conv](value) if kind == "CONSTANT" else CONVERT[conv](lo + x * (hi - lo))
               for kind, conv, value, lo, hi in args]


def test_shipped_tosc_is_the_generated_one(tmp_path):
    assert write(tmp_path / "fresh.tosc").read_bytes() == DEFAULT_OUT.read_bytes()


def test_layout_has_strips_meters_phrases_and_a_reply_display():
    by_name = {props(n)["name"].text: n for n in nodes(DEFAULT_OUT)}
    for stem in ("vocals", "drums", "bass", "other"):
        for part, kind in (("gain", "FADER"), ("level", "FADER"), ("mute", "BUTTON"), ("solo", "BUTTON"),
                           ("loop", "BUTTON"), ("db", "LABEL"), ("refine", "LABEL")):
            assert by_name[f"{stem}_{part}"].get("type") == kind
        assert props(by_name[f"{stem}_level"])["interactive"].text == "0"  # a meter, not a control
    assert by_name["applied"].get("type") == "TEXT"
    phrases = load_phrases()
    sent = [messages(by_name[f"phrase_{i + 1}"])[0][4][0][2] for i in range(len(phrases))]
    assert sent == phrases


@pytest.fixture
def server(osc):
    return osc(meter_hz=20.0, parser=True)


def test_every_control_sends_what_the_server_accepts(server, surface):
    tablet = surface(server)
    checked = 0
    for node in nodes(DEFAULT_OUT):
        for send, _, condition, address, args in messages(node):
            if not send:
                continue
            for values in sent_values(condition, args):
                reply, answer = tablet.ask(address, *values, timeout=30)
                absent = reply == "/stemd/error" and "not available" in answer[0]
                assert reply == "/stemd/ok" or absent, (address, values, answer)
                checked += 1
    assert checked > 30


def test_every_display_is_fed_by_feedback(server, surface):
    pushed = pushed_after_changes(server, surface(server))
    shown = {address for node in nodes(DEFAULT_OUT) for _, receive, _, address, _ in messages(node) if receive}
    assert shown and shown - pushed == set()
