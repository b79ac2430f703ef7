"""JupyterLab and headless Chromium for the real-browser test (tests/browser/test_lab.py).

``require_browser`` finds Debian's ``chromium`` and ``chromedriver`` (package
``chromium-driver``) and selenium, or skips naming what to install; with
``COURSEKIT_BROWSER_REQUIRED=1`` (set by ``.ci/run``) a missing piece fails instead.
``jupyter_lab`` starts JupyterLab on 127.0.0.1 with a token in a given folder, its settings,
workspaces and runtime files in a temp folder (nothing is written into the repository or the
user's ``~/.jupyter``). ``chromium`` drives headless Chromium through chromedriver: no
browser is downloaded (selenium is given both paths, so Selenium Manager never runs).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REQUIRED = os.environ.get("COURSEKIT_BROWSER_REQUIRED") == "1"
INSTALL = "apt-get install chromium chromium-driver (as root: `make browser`)"
"""What a learner runs to get the browser this test drives."""
WINDOW = (1400, 1000)
"""Browser window size (CSS pixels): the explorer's controls and figure side by side."""


@dataclass(frozen=True)
class Browser:
    """The two executables selenium is given: the browser and its driver."""

    chromium: str
    chromedriver: str


def missing_pieces(which: Any = shutil.which) -> list[str]:
    """Return what the test lacks, each as the Debian package or pip pin that provides it."""
    missing = []
    if not (which("chromium") or which("chromium-browser")):
        missing.append("chromium")
    if not which("chromedriver"):
        missing.append("chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    return missing


def skip_message(missing: list[str]) -> str:
    """Return the one-line reason the browser test cannot run, naming what to install."""
    return f"real-browser test needs {', '.join(missing)}: {INSTALL}"


def require_browser() -> Browser:
    """Return the Chromium and chromedriver paths; skip (fail when required) when missing."""
    missing = missing_pieces()
    if missing:
        if REQUIRED:
            pytest.fail(f"COURSEKIT_BROWSER_REQUIRED=1 but {skip_message(missing)}")
        pytest.skip(skip_message(missing))
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    return Browser(chromium=str(chromium), chromedriver=str(shutil.which("chromedriver")))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL, token, root folder and log file."""

    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        """Return the URL that opens ``name`` (relative to ``root``) in a fresh workspace."""
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"


SETTINGS: dict[str, dict[str, Any]] = {
    # no news or update toasts over the page
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # every cell in the DOM (windowing detaches cells out of view, and the test finds them);
    # the notebook's kernel starts without a "Select Kernel" dialog (it came up under load)
    "notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
}
"""JupyterLab user settings for the test, by ``@jupyterlab/`` plugin."""


def _settings(folder: Path) -> Path:
    """Write :data:`SETTINGS` as user settings under ``folder``; return ``folder``."""
    for plugin, values in SETTINGS.items():
        path = folder / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return folder


def _wait_ready(url: str, token: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll ``/api/status`` until the server answers; fail with its log's tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-800:]
            pytest.fail(f"JupyterLab exited with {process.returncode} before answering: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer {url}/api/status within {timeout:.0f} s (log: {log})")


@contextmanager
def jupyter_lab(root: Path, state: Path, *, repo: Path, timeout: float = 60) -> Iterator[Lab]:
    """Run JupyterLab on 127.0.0.1 (free port, random token) serving ``root``; stop it after.

    Args:
        root: the folder the lab serves (a temp copy of notebooks/).
        state: a temp folder for the server's config, runtime files, settings and workspaces.
        repo: put first on the kernels' ``PYTHONPATH``, so they import this checkout's coursekit.
        timeout: seconds to wait for the server to answer.
    """
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(_settings(state / "settings")),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "MPLBACKEND": "Agg",
    }
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", "--allow-root", "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no PyPI queries
    ]  # fmt: skip
    log = state / "jupyterlab.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, token, process, log, timeout)
        yield Lab(url=url, token=token, root=root, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def chromium(browser: Browser, downloads: Path) -> Iterator[Any]:
    """Start headless Chromium through chromedriver; quit it after.

    Args:
        browser: the executables (``require_browser``).
        downloads: Chromium's profile folder (a temp folder; nothing goes to ``~``).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser.chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's own sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--force-device-scale-factor=1",
        f"--user-data-dir={downloads}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(browser.chromedriver))
    try:
        yield driver
    finally:
        driver.quit()
