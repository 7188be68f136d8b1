#!/usr/bin/env bash
# Installs everything (system packages, venv, test extras) and runs the whole test suite.
# Under CI=true slow soaks run their short form; pass --long for the full soaks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
