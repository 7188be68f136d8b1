"""Screenshots of the web remote with the demo playing, for docs/: `python scripts/web_screenshot.py`.

It runs what `stemd demo` runs (a private dummy-backend jackd, the daemon with the best model here,
the generated song looping into its inputs), opens the page in headless Chromium at a tablet's and a
phone's size, types two sentences as a performer would, and saves docs/web-remote.png and
docs/web-remote-phone.png once the meters move.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's Chromium launcher (system browser, no downloads)

import numpy as np  # noqa: E402
from browser import chromium  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from stemd.cli.demo import Deck  # noqa: E402
from stemd.config import validate  # noqa: E402
from stemd.daemon.app import Daemon  # noqa: E402
from stemd.daemon.private_jackd import PrivateJackd  # noqa: E402
from stemd.engines.fixtures import render_song  # noqa: E402

SIZES = {"web-remote.png": (1024, 1180), "web-remote-phone.png": (412, 1400)}
TYPED = ("bring back the vocals", "drop the vocals")  # on the shipped 2-stem model's own stems


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shoot(url: str, out: Path, size: tuple[int, int]) -> None:
    with chromium(*size) as driver:
        wait = WebDriverWait(driver, 30)
        driver.get(url)
        wait.until(lambda d: d.find_element(By.ID, "output").text.startswith("separated"))
        for text in TYPED:
            driver.find_element(By.ID, "text").send_keys(text, Keys.ENTER)
            wait.until(lambda d: text in d.find_element(By.ID, "reply").text
                       and "…" not in d.find_element(By.ID, "reply").text)
            print(f"  {text!r}: {driver.find_element(By.ID, 'reply').text}")
        driver.find_element(By.ID, "text").send_keys("vocals up 3 dB")
        time.sleep(1.5)  # meters moving, the last reply shown
        driver.save_screenshot(str(out))
        driver.find_element(By.ID, "text").clear()
        driver.find_element(By.CSS_SELECTOR, '#reset').click()


def main() -> int:
    server = f"stemd-shot-{os.getpid()}"
    jackd = PrivateJackd(server).start()
    port = free_port()
    state = tempfile.mkdtemp(prefix="stemd-shot-")
    config = validate({
        "jack": {"server_name": server, "connect_inputs": [], "connect_outputs": [], "stem_ports": True},
        "osc": {"enabled": False}, "voice": {"enabled": False}, "midi": {"jack_ports": False},
        "web": {"port": port}, "state": {"dir": state, "restore": False},
    })
    daemon = Daemon(config).start()
    supervisor = threading.Thread(target=daemon.run, daemon=True)
    supervisor.start()
    deck = None
    try:
        song = np.tile(render_song(8.0, daemon.rate).mix, (1, 10))  # the tests' cached 8 s song, looped
        deck = Deck(server, song, daemon.sources, 1.0)
        deck.start()
        for name, size in SIZES.items():
            shoot(f"http://127.0.0.1:{port}/", ROOT / "docs" / name, size)
            print(ROOT / "docs" / name)
    finally:
        if deck is not None:
            deck.close()
        daemon.stopping.set()
        supervisor.join(5)
        daemon.stop()
        jackd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
