"""Writes the current-TouchOSC layout `control/osc/touchosc/stemd.tosc` from the OSC namespace.

Generated, like the Mk1 file beside it (touchosc_layout.py), so it cannot drift from the server: every
control sends to an address the server answers and shows one that feedback pushes (a test decompresses
the file and checks both against a live server).

Format: a `.tosc` file is zlib-compressed XML, root `<lexml version="3">` holding one GROUP node (the
document); each node has typed `<properties>` (b bool, c colour, f float, i int, r frame, s string),
`<values>` (x for buttons and faders, text for labels; `touch` for all), `<messages>` with `<osc>`
entries (triggers, a path of partials, arguments of partials: CONSTANT or VALUE, with a conversion
and a scale) and `<children>`. Node IDs are derived from control names, so the file is the same
bytes on every run.

Text entry: the current control reference lists LABEL (single line) and TEXT (multiple lines) as
displays; neither takes keyboard input, and no other control does. So the layout *shows* replies in a
TEXT control (`/stemd/applied`, every applied batch from any source) and offers sentences as a grid of
phrase buttons that each send one to `/stemd/intent`; typing goes through the web remote, open in the
same tablet's browser.

    python -m stemd.control.osc.tosc_layout [--phrases FILE] [OUT]
"""

from __future__ import annotations

import argparse
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from stemd.control.commands import STEMS_4
from stemd.control.osc.touchosc_layout import FEEDBACK_PORT, LOOP_BEATS
from stemd.control.phrases import load_phrases

DEFAULT_OUT = Path(__file__).parent / "touchosc" / "stemd.tosc"
WIDTH, HEIGHT = 1024, 1366  # portrait iPad Pro 12.9" points; TouchOSC scales to the screen
_IDS = uuid.UUID("5e3d0000-0000-4000-8000-000000000000")
Rgba = tuple[float, float, float, float]
COLORS: dict[str, Rgba] = {
    "vocals": (0.93, 0.35, 0.6, 1.0), "drums": (0.98, 0.6, 0.2, 1.0), "bass": (0.3, 0.55, 0.95, 1.0),
    "other": (0.35, 0.8, 0.45, 1.0), "all": (0.7, 0.7, 0.7, 1.0),
}
GRAY, RED, YELLOW, BLUE, PURPLE, GREEN = ((0.6, 0.6, 0.6, 1.0), (0.9, 0.25, 0.25, 1.0), (0.95, 0.8, 0.2, 1.0),
                                         (0.3, 0.55, 0.95, 1.0), (0.65, 0.4, 0.9, 1.0), (0.3, 0.8, 0.4, 1.0))
MOMENTARY, TOGGLE = 0, 2  # buttonType: momentary, toggle on press


@dataclass(frozen=True)
class Arg:
    """One OSC argument partial: a constant, or the control's value `x` / `text` scaled to lo..hi."""

    kind: str  # CONSTANT | VALUE
    conversion: str  # FLOAT | INTEGER | STRING | BOOLEAN
    value: str
    lo: float = 0.0
    hi: float = 1.0


@dataclass(frozen=True)
class Osc:
    """One OSC message of a control: sent when `var` changes as `condition` says, and/or received."""

    address: str
    args: tuple[Arg, ...] = ()
    send: bool = True
    receive: bool = False
    var: str = "x"
    condition: str = "ANY"  # ANY | RISE | FALL


@dataclass(frozen=True)
class Node:
    kind: str  # GROUP | BUTTON | FADER | LABEL | TEXT
    name: str
    frame: tuple[int, int, int, int]
    color: Rgba = GRAY
    osc: tuple[Osc, ...] = ()
    text: str = ""
    interactive: bool = True
    button_type: int = MOMENTARY
    children: tuple["Node", ...] = field(default=())


def value(x: float) -> Arg:
    return Arg("VALUE", "FLOAT", "x", 0.0, x)


def text_in(address: str) -> Osc:
    """A display fed by `address` (its first argument becomes the text)."""
    return Osc(address, (Arg("VALUE", "STRING", "text"),), send=False, receive=True, var="text")


def push(address: str, *args: Arg) -> Osc:
    """A momentary button's message: sent once on the press."""
    return Osc(address, args, condition="RISE")


def controls(stems: tuple[str, ...] = STEMS_4, phrases: list[str] | None = None) -> Node:
    """The document (a GROUP, every control directly inside it, so no group overlaps another's touch
    area): top bar, the reply display, one strip per stem plus master, the phrase grid."""
    top = [
        Node("LABEL", "title", (10, 10, 160, 60), GRAY, text="stemd", interactive=False),
        Node("BUTTON", "subscribe", (180, 10, 150, 60), YELLOW,
             (push("/stemd/subscribe", Arg("CONSTANT", "INTEGER", str(FEEDBACK_PORT))),)),
        Node("BUTTON", "reset", (340, 10, 130, 60), RED, (push("/stemd/reset"),)),
        Node("BUTTON", "tap", (480, 10, 130, 60), PURPLE, (push("/stemd/tap"),)),
        Node("BUTTON", "talk", (620, 10, 140, 60), GREEN,
             (Osc("/stemd/voice/listen", (Arg("VALUE", "INTEGER", "x"),)),)),
        Node("LABEL", "tempo", (770, 10, 244, 60), GRAY, (text_in("/stemd/tempo"),), text="BPM", interactive=False),
        Node("TEXT", "applied", (10, 80, 1004, 110), GRAY, (text_in("/stemd/applied"),),
             text="every applied command shows here", interactive=False),
    ]
    strips = stems + ("all",)
    width = 1004 // len(strips)
    for i, stem in enumerate(strips):
        x, w, color, base = 10 + i * width, width - 10, COLORS.get(stem, GRAY), f"/stemd/stem/{stem}"
        parts = [
            Node("LABEL", f"{stem}_name", (x, 200, w, 44), color, text=stem, interactive=False),
            Node("FADER", f"{stem}_gain", (x, 250, w - 40, 520), color,
                 (Osc(f"{base}/gain", (value(1.0),), receive=True),)),
            Node("LABEL", f"{stem}_db", (x, 780, w, 44), color, (text_in(f"{base}/gain_db"),),
                 text="0 dB", interactive=False),
        ]
        if stem != "all":
            parts += [
                Node("FADER", f"{stem}_level", (x + w - 30, 250, 30, 520), color,
                     (Osc(f"{base}/level", (value(1.0),), send=False, receive=True),), interactive=False),
                Node("BUTTON", f"{stem}_mute", (x, 834, w, 70), RED,
                     (Osc(f"{base}/mute", (Arg("VALUE", "INTEGER", "x"),), receive=True),), button_type=TOGGLE),
                Node("BUTTON", f"{stem}_solo", (x, 914, w, 70), YELLOW,
                     (Osc(f"{base}/solo", (Arg("VALUE", "INTEGER", "x"),), receive=True),), button_type=TOGGLE),
                Node("BUTTON", f"{stem}_loop", (x, 994, w, 70), BLUE,
                     (Osc(f"{base}/loop", (value(LOOP_BEATS),), receive=True),), button_type=TOGGLE),
                Node("LABEL", f"{stem}_refine", (x, 1074, w, 40), color, (text_in(f"{base}/refine"),),
                     text="refine off", interactive=False),
            ]
        top += parts
    top += phrase_grid(load_phrases() if phrases is None else phrases)
    return Node("GROUP", "stemd", (0, 0, WIDTH, HEIGHT), (0.08, 0.08, 0.09, 1.0), children=tuple(top))


def phrase_grid(phrases: list[str], columns: int = 4) -> list[Node]:
    """Buttons that each send one sentence to `/stemd/intent`, with a label over each."""
    cells = []
    rows = max(1, -(-len(phrases) // columns))
    cell_w, cell_h = 1004 // columns, min(60, (HEIGHT - 1134) // rows)
    for i, text in enumerate(phrases):
        x, y = 10 + (i % columns) * cell_w, 1124 + (i // columns) * cell_h
        frame = (x, y, cell_w - 8, cell_h - 6)
        cells += [
            Node("BUTTON", f"phrase_{i + 1}", frame, PURPLE, (push("/stemd/intent", Arg("CONSTANT", "STRING", text)),)),
            Node("LABEL", f"phrase_{i + 1}_text", frame, (1.0, 1.0, 1.0, 1.0), text=text, interactive=False),
        ]
    return cells


# ---- XML ---------------------------------------------------------------------------------------------


def _prop(parent: ET.Element, kind: str, key: str, val: object) -> None:
    prop = ET.SubElement(parent, "property", type=kind)
    ET.SubElement(prop, "key").text = key
    v = ET.SubElement(prop, "value")
    if kind == "r":
        for k, n in zip("xywh", val):  # type: ignore[arg-type]
            ET.SubElement(v, k).text = str(n)
    elif kind == "c":
        for k, n in zip("rgba", val):  # type: ignore[arg-type]
            ET.SubElement(v, k).text = f"{n:g}"
    elif kind == "b":
        v.text = "1" if val else "0"
    else:
        v.text = str(val)


def _partial(parent: ET.Element, arg: Arg) -> None:
    p = ET.SubElement(parent, "partial")
    for key, text in (("type", arg.kind), ("conversion", arg.conversion), ("value", arg.value),
                      ("scaleMin", f"{arg.lo:g}"), ("scaleMax", f"{arg.hi:g}")):
        ET.SubElement(p, key).text = text


def _osc(parent: ET.Element, osc: Osc) -> None:
    o = ET.SubElement(parent, "osc")
    for key, flag in (("enabled", True), ("send", osc.send), ("receive", osc.receive), ("feedback", False),
                      ("noDuplicates", False)):
        ET.SubElement(o, key).text = "1" if flag else "0"
    ET.SubElement(o, "connections").text = "1111111111"
    trigger = ET.SubElement(ET.SubElement(o, "triggers"), "trigger")
    ET.SubElement(trigger, "var").text = osc.var
    ET.SubElement(trigger, "condition").text = osc.condition
    _partial(ET.SubElement(o, "path"), Arg("CONSTANT", "STRING", osc.address))
    args = ET.SubElement(o, "arguments")
    for arg in osc.args:
        _partial(args, arg)


def _value(parent: ET.Element, key: str, default: str) -> None:
    v = ET.SubElement(parent, "value")
    for k, text in (("key", key), ("locked", "0"), ("lockedDefaultCurrent", "0"), ("default", default),
                    ("defaultPull", "0")):
        ET.SubElement(v, k).text = text


def _node(parent: ET.Element, node: Node) -> None:
    element = ET.SubElement(parent, "node", ID=str(uuid.uuid5(_IDS, node.name)), type=node.kind)
    props = ET.SubElement(element, "properties")
    _prop(props, "s", "name", node.name)
    _prop(props, "r", "frame", node.frame)
    _prop(props, "c", "color", node.color)
    _prop(props, "b", "visible", True)
    _prop(props, "b", "interactive", node.interactive)
    _prop(props, "b", "background", node.kind not in ("LABEL", "TEXT", "GROUP"))
    _prop(props, "b", "outline", node.kind != "GROUP")
    if node.kind == "BUTTON":
        _prop(props, "i", "buttonType", node.button_type)
    if node.kind in ("LABEL", "TEXT"):
        _prop(props, "i", "textSize", 18 if node.kind == "LABEL" else 16)
        _prop(props, "c", "textColor", (1.0, 1.0, 1.0, 1.0))
    values = ET.SubElement(element, "values")
    if node.kind in ("LABEL", "TEXT"):
        _value(values, "text", node.text)
    elif node.kind in ("BUTTON", "FADER"):
        _value(values, "x", "0")
    _value(values, "touch", "false")
    if node.osc:
        messages = ET.SubElement(element, "messages")
        for osc in node.osc:
            _osc(messages, osc)
    if node.children:
        children = ET.SubElement(element, "children")
        for child in node.children:
            _node(children, child)


def document_xml(stems: tuple[str, ...] = STEMS_4, phrases: list[str] | None = None) -> bytes:
    root = ET.Element("lexml", version="3")
    _node(root, controls(stems, phrases))
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def write(path: Path = DEFAULT_OUT, stems: tuple[str, ...] = STEMS_4, phrases: list[str] | None = None) -> Path:
    """The .tosc file: zlib over the XML, the same bytes on every run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zlib.compress(document_xml(stems, phrases), 9))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stemd.control.osc.tosc_layout", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--phrases", help="phrase file, one sentence a line (default: control/phrases.txt)")
    args = parser.parse_args(argv)
    print(write(args.out, phrases=load_phrases(args.phrases)))


if __name__ == "__main__":
    main()
