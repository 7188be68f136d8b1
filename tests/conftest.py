"""Shared test set-up: no hub downloads, ever; `--long` switches soaks to their full length."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", help="run soaks at full length (minutes)")


import pytest  # noqa: E402

from jack_server import JackServer  # noqa: E402


@pytest.fixture
def jackd():
    """A fresh private jackd2 (dummy backend, 48 kHz, 256 frames) for one test."""
    server = JackServer().start()
    yield server
    server.stop()
