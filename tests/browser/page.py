"""JupyterLab as a learner uses it, through selenium: open, run, find, move, screenshot.

Every wait is explicit (:func:`wait_for`, with a timeout) and fails with one line naming what
was not found. Controls are moved with real input events (``ActionChains`` mouse drags and
key presses), never by setting values from JavaScript.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from coursekit.io import atomic_open
from tests.browser.lab import Lab

SCREENSHOTS_ENV = "COURSEKIT_SCREENSHOTS"
"""When set to a folder, every screenshot is also written there (e.g. docs/screenshots)."""


def wait_for(driver: Any, find: Callable[[Any], Any], what: str, timeout: float) -> Any:
    """Return ``find(driver)`` once it is truthy; fail "``what`` not found within N s" if not.

    Stale elements (JupyterLab re-renders outputs) and clicks intercepted by an overlay (the
    spinner JupyterLab shows while a notebook loads, slow on a loaded machine) count as
    "not yet".
    """
    ignored = (StaleElementReferenceException, ElementClickInterceptedException)
    waiter = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored)
    try:
        return waiter.until(find)
    except TimeoutException:
        pass  # failed outside the handler: one line, without selenium's empty message
    pytest.fail(f"{what} not found within {timeout:.0f} s", pytrace=False)


def open_notebook(driver: Any, lab: Lab, name: str, *, timeout: float = 120) -> None:
    """Open ``name`` in JupyterLab; return once its cells are drawn and its kernel is idle.

    Its first cell is then clicked, which makes the notebook JupyterLab's current widget (its
    menu commands are disabled until then).
    """
    driver.get(lab.notebook_url(name))
    panel = ".jp-NotebookPanel:has(.jp-Cell)"
    idle = f"{panel} .jp-Notebook-ExecutionIndicator[data-status='idle']"
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, panel),
             f"notebook {name} (its cells in JupyterLab)", timeout)  # fmt: skip
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, idle),
             f"an idle kernel for {name}", timeout)  # fmt: skip
    click(driver, f"{panel} .jp-Cell", f"the first cell of {name}", timeout)


def click(driver: Any, css: str, what: str, timeout: float) -> None:
    """Click the first element matching ``css``, finding it again if the page redraws it."""

    def clicked(d: Any) -> bool:
        found = d.find_elements(By.CSS_SELECTOR, css)
        if not found:
            return False
        found[0].click()  # a stale element raises and the wait tries again
        return True

    wait_for(driver, clicked, what, timeout)


def menu(driver: Any, top: str, item: str, *, timeout: float = 30) -> None:
    """Click the menu bar's ``top`` menu, then its ``item`` once enabled (by visible labels).

    A notebook command stays disabled until the notebook is JupyterLab's current widget: a
    disabled item closes the menu (Escape) and the menu is opened again.
    """
    label = (
        "//li[contains(@class,'lm-Menu-item')]"
        f"[.//div[contains(@class,'lm-Menu-itemLabel') and normalize-space()='{item}']]"
    )
    top_xpath = f"//li[contains(@class,'lm-MenuBar-item')][normalize-space()='{top}']"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bar = wait_for(driver, lambda d: _first(d.find_elements(By.XPATH, top_xpath)),
                       f"menu {top!r}", timeout)  # fmt: skip
        bar.click()
        entry = wait_for(driver, lambda d: _first(d.find_elements(By.XPATH, label)),
                         f"{top} > {item}", timeout)  # fmt: skip
        if "lm-mod-disabled" not in (entry.get_attribute("class") or ""):
            entry.click()
            return
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
        time.sleep(0.5)
    pytest.fail(f"{top} > {item} not enabled within {timeout:.0f} s", pytrace=False)


def run_all(driver: Any, *, attempts: int = 3, started_within: float = 15) -> None:
    """Run every cell of the open notebook (Run > Run All Cells) and see execution start.

    Until the page's session holds the kernel, JupyterLab clears the prompts instead of
    running (no error shown), so a run that shows no ``[*]`` within ``started_within`` seconds
    is asked for again, up to ``attempts`` times.
    """
    running = "//div[contains(@class,'jp-CodeCell')]//div[contains(@class,'jp-InputPrompt')][contains(., '*')]"  # noqa: E501
    for _ in range(attempts):
        menu(driver, "Run", "Run All Cells")
        waiter = WebDriverWait(driver, started_within, poll_frequency=0.05,
                               ignored_exceptions=(StaleElementReferenceException,))  # fmt: skip
        try:
            waiter.until(lambda d: d.find_elements(By.XPATH, running))
            return
        except TimeoutException:
            continue
    pytest.fail(f"Run All Cells started no cell (no [*] prompt) in {attempts} tries", pytrace=False)


def code_cell(driver: Any, source: str, *, timeout: float = 30) -> WebElement:
    """Return the code cell whose input contains ``source``."""
    xpath = (
        "//div[contains(@class,'jp-CodeCell')]"
        f"[.//div[contains(@class,'jp-InputArea')][contains(., '{source}')]]"
    )
    return wait_for(driver, lambda d: _first(d.find_elements(By.XPATH, xpath)),
                    f"a code cell containing {source!r}", timeout)  # fmt: skip


def sources_while_running(cell: WebElement, css: str, timeout: float) -> list[str]:
    """Poll the ``src`` of the cell's first ``css`` image while the cell runs; return changes.

    Returns:
        The distinct consecutive sources seen (a redraw replaces the ``<img>``: a stale one
        is read again on the next poll).
    """
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not is_running(cell):
                return seen
            images = cell.find_elements(By.CSS_SELECTOR, css)
            source = images[0].get_attribute("src") if images else None
        except StaleElementReferenceException:
            continue
        if source and (not seen or seen[-1] != source):
            seen.append(source)
        time.sleep(0.05)
    pytest.fail(f"the cell still runs after {timeout:.0f} s", pytrace=False)


def is_running(cell: WebElement) -> bool:
    """Whether the cell is executing or queued (its prompt shows ``[*]``)."""
    return "*" in cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text


def control(scope: WebElement, kind: str, label: str, inner: str) -> WebElement:
    """Return the ``inner`` element of the ipywidgets control of class ``kind`` labelled ``label``.

    Example: ``control(cell, "widget-slider", "rank", "noUi-handle")``.
    """
    xpath = (
        f".//div[contains(@class,'{kind}')][./label[normalize-space()='{label}']]"
        f"//*[contains(@class,'{inner}') or local-name()='{inner}']"
    )
    found = scope.find_elements(By.XPATH, xpath)
    if not found:
        pytest.fail(f"the {label!r} control ({kind} > {inner}) not found", pytrace=False)
    return found[0]


def drag(driver: Any, handle: WebElement, pixels: int) -> None:
    """Drag ``handle`` horizontally by ``pixels`` with the mouse (press, move, release)."""
    actions = ActionChains(driver, duration=50)
    actions.click_and_hold(handle).pause(0.1).move_by_offset(pixels, 0).pause(0.1).release()
    actions.perform()


def press(driver: Any, element: WebElement, *keys: str) -> None:
    """Click ``element`` (focus; a ``<select>`` opens its list), then press ``keys`` in order.

    For a ``<select>``: ArrowDown then Enter picks the next option whether or not the click
    opened the list (a closed, focused list changes on ArrowDown; an open one on Enter).
    """
    actions = ActionChains(driver).move_to_element(element).click().pause(0.2)
    for key in keys:
        actions.send_keys(key).pause(0.1)
    actions.perform()


class Screenshots:
    """Writes element screenshots to a test folder and, when set, :data:`SCREENSHOTS_ENV`."""

    def __init__(self, folder: Path) -> None:
        extra = os.environ.get(SCREENSHOTS_ENV)
        self.folders = [folder, *([Path(extra)] if extra else [])]

    def save(self, driver: Any, element: WebElement, name: str) -> list[Path]:
        """Scroll ``element`` into view and save it as ``name``.png in every folder."""
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        time.sleep(0.3)  # let the scroll and any resize settle before the capture
        png = element.screenshot_as_png
        written = []
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_open(folder / f"{name}.png", "wb") as sink:
                sink.write(png)
            written.append(folder / f"{name}.png")
        return written


def _first(items: Any) -> Any:
    """Return the first item of an iterable, or None."""
    return next(iter(items), None)
