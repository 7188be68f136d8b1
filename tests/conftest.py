"""Shared test set-up: no hub downloads, ever; `--long` switches soaks to their full length."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", help="run soaks at full length (minutes)")
