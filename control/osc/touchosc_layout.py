"""Writes the TouchOSC layout `control/osc/touchosc/stemd.touchosc` from the OSC namespace.

Generated rather than drawn so the layout cannot drift from the server: every control uses an address
the server answers, and every label or meter one that feedback pushes (a test checks both).

Format: the classic TouchOSC layout (TouchOSC Mk1 1.9+, layout version 15, as TouchOSC Editor 1.8
saves it): a zip holding `index.xml`, with control names, texts and custom OSC addresses base64
encoded. Portrait iPad page (768 x 1024); current TouchOSC opens Mk1 layouts too.

    python -m stemd.control.osc.touchosc_layout [OUT]
"""

from __future__ import annotations

import base64
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from stemd.control.commands import STEMS_4

DEFAULT_OUT = Path(__file__).parent / "touchosc" / "stemd.touchosc"
PAGE = "stemd"
FEEDBACK_PORT = 9001  # the tablet's incoming port; SUBSCRIBE sends it
LOOP_BEATS = 4
COLORS = {"vocals": "pink", "drums": "orange", "bass": "blue", "other": "green", "all": "gray"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class Control:
    name: str
    kind: str  # TouchOSC Mk1 type: toggle, push, faderv, labelh, led
    x: int
    y: int
    w: int
    h: int
    color: str
    address: str = ""
    lo: float = 0.0
    hi: float = 1.0
    text: str = ""

    def xml(self) -> str:
        # A control's default address is /<page>/<name>; naming it after its address makes the default
        # and the custom address (`osc_cs`) the same, so an importer that keeps only one still works.
        name = self.address.removeprefix(f"/{PAGE}/") if self.address else self.name
        attrs = {
            "name": _b64(name), "x": self.x, "y": self.y, "w": self.w, "h": self.h,
            "color": self.color, "type": self.kind,
        }
        if self.kind.startswith("label"):
            attrs.update(text=_b64(self.text), size=14, background="true", outline="false")
        else:
            attrs.update(scalef=f"{self.lo:.1f}", scalet=f"{self.hi:.1f}")
        if self.kind == "faderv":
            attrs.update(response="absolute", inverted="false", centered="false")
        if self.kind in ("toggle", "push"):
            attrs.update(local_off="false")
        if self.address:
            attrs.update(osc_cs=_b64(self.address))
        return "<control " + " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items()) + "></control>"


def controls(stems: tuple[str, ...] = STEMS_4) -> list[Control]:
    """Top bar (subscribe, reset, tap, talk, tempo, last applied), then one strip per stem plus master."""
    out = [
        Control("title", "labelh", 10, 10, 150, 40, "gray", text="stemd"),
        Control("subscribe", "push", 170, 10, 110, 40, "yellow", "/stemd/subscribe", FEEDBACK_PORT, FEEDBACK_PORT),
        Control("reset", "push", 290, 10, 100, 40, "red", "/stemd/reset"),
        Control("tap", "push", 400, 10, 100, 40, "purple", "/stemd/tap"),
        Control("talk", "push", 510, 10, 110, 40, "green", "/stemd/voice/listen"),
        Control("tempo", "labelh", 630, 10, 128, 40, "gray", "/stemd/tempo", text="BPM"),
        Control("applied", "labelh", 10, 60, 748, 50, "gray", "/stemd/applied", text="last command"),
    ]
    strips = stems + ("all",)
    width = 748 // len(strips)
    for i, stem in enumerate(strips):
        x, w, color = 10 + i * width, width - 10, COLORS.get(stem, "gray")
        base = f"/stemd/stem/{stem}"
        out += [
            Control(f"{stem}_name", "labelh", x, 120, w, 36, color, text=stem),
            Control(f"{stem}_gain", "faderv", x, 160, w - 30, 500, color, f"{base}/gain"),
            Control(f"{stem}_db", "labelh", x, 670, w, 36, color, f"{base}/gain_db", text="0 dB"),
        ]
        if stem == "all":
            continue
        out += [
            Control(f"{stem}_level", "led", x + w - 24, 160, 24, 24, color, f"{base}/level"),
            Control(f"{stem}_mute", "toggle", x, 716, w, 60, "red", f"{base}/mute"),
            Control(f"{stem}_solo", "toggle", x, 786, w, 60, "yellow", f"{base}/solo"),
            Control(f"{stem}_loop", "toggle", x, 856, w, 60, "blue", f"{base}/loop", 0.0, LOOP_BEATS),
            Control(f"{stem}_refine", "labelh", x, 926, w, 36, color, f"{base}/refine", text="refine off"),
        ]
    return out


def layout_xml(stems: tuple[str, ...] = STEMS_4) -> str:
    body = "".join(c.xml() for c in controls(stems))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<layout version="15" mode="1" orientation="vertical">'
        f'<tabpage name="{_b64(PAGE)}" scalef="0.0" scalet="1.0">{body}</tabpage></layout>'
    )


def write(path: Path = DEFAULT_OUT, stems: tuple[str, ...] = STEMS_4) -> Path:
    """The .touchosc zip, byte-identical on every run (fixed entry date)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = zipfile.ZipInfo("index.xml", date_time=(2024, 1, 1, 0, 0, 0))
    entry.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(entry, layout_xml(stems))
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT))
