"""The shipped TouchOSC layout: regenerates byte for byte, and every control speaks the live namespace."""

import base64
import xml.etree.ElementTree as ET
import zipfile

import pytest

from osc_harness import osc, pushed_after_changes, surface  # noqa: F401 (fixtures)
from stemd.control.osc.touchosc_layout import DEFAULT_OUT, write

SENDERS = ("toggle", "push", "faderv")


def layout_controls(path):
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == ["index.xml"]
        root = ET.fromstring(z.read("index.xml"))
    assert root.tag == "layout" and root.get("version") == "15"
    page = base64.b64decode(root.find("tabpage").get("name")).decode()
    controls = []
    for c in root.iter("control"):
        address = base64.b64decode(c.get("osc_cs", "")).decode()
        if address:  # the default address /<page>/<name> is the same, for importers that drop osc_cs
            assert f"/{page}/{base64.b64decode(c.get('name')).decode()}" == address
        controls.append({**c.attrib, "address": address})
    return controls


def test_shipped_layout_is_the_generated_one(tmp_path):
    assert write(tmp_path / "fresh.touchosc").read_bytes() == DEFAULT_OUT.read_bytes()


@pytest.fixture
def server(osc):
    return osc(meter_hz=20.0)


def test_every_control_sends_what_the_server_accepts(server, surface):
    tablet = surface(server)
    for c in layout_controls(DEFAULT_OUT):
        if c["type"] not in SENDERS:
            continue
        for value in (float(c["scalet"]), float(c["scalef"])):  # press and release / top and bottom
            address, args = tablet.ask(c["address"], value)
            absent = address == "/stemd/error" and "not available" in args[0]
            assert address == "/stemd/ok" or absent, (c["address"], value, args)


def test_every_control_is_fed_by_feedback(server, surface):
    pushed = pushed_after_changes(server, surface(server))
    command_only = {"/stemd/subscribe", "/stemd/reset", "/stemd/tap", "/stemd/voice/listen"}
    shown = {c["address"] for c in layout_controls(DEFAULT_OUT) if c["address"]} - command_only
    assert shown - pushed == set()
