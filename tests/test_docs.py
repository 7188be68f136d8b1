"""The docs in docs/ describe the code as it is: the command table and the OSC namespace are checked
against the vocabulary and the server's routes, links resolve, and nothing points outside the repo."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from stemd.config import validate
from stemd.control.commands import _SCHEMA, STEMS_4
from stemd.control.osc.server import OscServer
from stemd.daemon.mixer import Mixer
from stemd.daemon.session import Session

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _table_rows(text: str, heading: str) -> list[list[str]]:
    """Cells of the first Markdown table after `heading`, header and rule skipped."""
    section = text[text.index(heading):]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


def _codes(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_command_table_lists_every_action_with_its_fields():
    rows = _table_rows((DOCS / "commands.md").read_text(), "| action |")
    documented = {}
    for action, fields, _ in rows:
        (name,) = _codes(action)
        documented[name] = {f.rstrip("?"): not f.endswith("?") for f in _codes(fields)}
    in_code = {a.value: dict(schema) for a, schema in _SCHEMA.items()}
    assert documented == in_code


def test_the_osc_request_table_is_the_servers_namespace(tmp_path):
    server = OscServer(Session(Mixer(STEMS_4, 48000)), validate({}).osc, str(tmp_path))
    in_code = set(server._routes) | {f"/stemd/stem/<stem>/{c}" for c in server._stem_routes}
    rows = _table_rows((DOCS / "osc.md").read_text(), "## Requests")
    documented = {_codes(address)[0] for address, *_ in rows}
    assert documented == in_code


def _tracked() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / n for n in names.split()]


def test_nothing_in_the_repository_points_outside_it():
    outside = re.compile(r"\.\./shared|DESIGN-NOTES\.md|(?<![\w/])DESIGN\.md")
    offenders = [str(p.relative_to(ROOT)) for p in _tracked()
                 if p.suffix in {".py", ".md", ".toml", ".sh", ".service", ".txt"} and p.exists()
                 and outside.search(p.read_text(errors="replace"))]
    assert offenders == []


def test_relative_links_in_the_docs_resolve():
    broken = []
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
