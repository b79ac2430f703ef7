"""The notebooks in a real browser: JupyterLab, headless Chromium, real mouse and keys.

Phase 2's rank explorer: run the notebook, drag the rank slider and change the GPU budget
with the keyboard; the verdict and the planner's line must change. The live dashboard: a
short notebook trains the tiny model with coursekit's ``Dashboard`` callback; the figure must
change while the steps run. Phase 1's committed loss curve is only opened and captured.
Screenshots go to a test folder and, with ``COURSEKIT_SCREENSHOTS=DIR``, to DIR
(docs/screenshots holds the committed ones).

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them as root);
skipped, naming them, where they are missing (``COURSEKIT_BROWSER_REQUIRED=1``: fails).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from tests.browser.lab import Browser, Lab, chromium, jupyter_lab, require_browser

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_NOTEBOOK = "dashboard.ipynb"
DASHBOARD_STEPS = 40
"""Training steps of the dashboard notebook: each redraws (~0.1 s), so the run lasts seconds."""
DASHBOARD_CELL = f"""\
from coursekit.display.dashboard import Dashboard
from coursekit.exercises.tinymodel import tiny_examples, tiny_qwen2
from coursekit.train.config import TrainConfig
from coursekit.train.loop import Trainer, make_accelerator

config = TrainConfig(
    max_steps={DASHBOARD_STEPS}, micro_batch_size=2, learning_rate=1e-2, seq_len=32,
    eval_every=10, schedule="constant",
)
dashboard = Dashboard(every_steps=1, every_seconds=0, title="tiny Qwen2")
trainer = Trainer(
    tiny_qwen2(), tiny_examples(64), tiny_examples(8, seed=1), config, pad_id=0,
    callbacks=[dashboard], accelerator=make_accelerator(config, cpu=True),
)
summary = trainer.fit()
print("steps", summary["steps"], "redraws", dashboard.redraws)
"""


def write_dashboard_notebook(path: Path) -> None:
    """Write the one-cell notebook that trains the tiny model under the live dashboard."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(DASHBOARD_CELL)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def browser() -> Browser:
    return require_browser()


@pytest.fixture(scope="module")
def lab(browser: Browser, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"  # a copy: the lab and its kernels never write into the repo
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    write_dashboard_notebook(root / DASHBOARD_NOTEBOOK)
    (base / "state").mkdir()
    with jupyter_lab(root, base / "state", repo=REPO) as running:
        yield running


@pytest.fixture(scope="module")
def driver(browser: Browser, lab: Lab, tmp_path_factory: pytest.TempPathFactory):
    with chromium(browser, tmp_path_factory.mktemp("chromium-profile")) as running:
        yield running


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory):
    from tests.browser.page import Screenshots

    return Screenshots(tmp_path_factory.mktemp("screenshots"))


def _first(items):
    return next(iter(items), None)


def explorer_lines(output) -> tuple[str, str]:
    """Return the explorer's (verdict, planner) lines, or ("", "") while it redraws."""
    lines = output.text.splitlines()
    verdict = next((line for line in lines if line.startswith("trainable ")), "")
    planner = next((line for line in lines if line.startswith("planner: ")), "")
    return verdict, planner


def test_rank_explorer_reacts_to_slider_and_budget(driver, lab, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from tests.browser.page import control, drag, open_notebook, press, run_all, wait_for

    open_notebook(driver, lab, "phase2_analysis.ipynb")
    run_all(driver)
    explorer = (
        "//div[contains(@class,'widget-output')]"
        "[contains(., 'trainable ')][contains(., 'planner: ')]"
    )
    what = "the rank explorer's verdict and planner lines (after Run All)"
    output = wait_for(driver, lambda d: _first(d.find_elements(By.XPATH, explorer)), what, 120)
    cell = output.find_element(By.XPATH, "./ancestor::div[contains(@class,'jp-OutputArea')][1]")
    verdict, planner = explorer_lines(output)
    assert "of 8 GiB" in verdict, (
        f"explorer's first verdict is not for the 8 GiB default: {verdict}"
    )
    shots.save(driver, cell, "phase2_explorer")

    rank = control(cell, "widget-slider", "rank", "noUi-handle")
    drag(driver, rank, 400)  # to the right end: the largest rank
    readout = control(cell, "widget-slider", "rank", "widget-readout")
    wait_for(driver, lambda d: readout.text == "256", "rank readout 256 after the drag", 10)
    moved = wait_for(
        driver,
        lambda d: (lines := explorer_lines(output))[0] not in ("", verdict) and lines,
        f"a new verdict after dragging rank to 256 (still {verdict!r})",
        30,
    )
    assert moved[1] == planner, f"the planner line changed with rank alone: {moved[1]!r}"

    budget = control(cell, "widget-dropdown", "GPU GB", "select")
    press(driver, budget, Keys.ARROW_DOWN, Keys.ENTER)  # 8 -> 16 GiB
    final = wait_for(
        driver,
        lambda d: (lines := explorer_lines(output))[1] not in ("", planner) and lines,
        f"a new planner line after the budget key press (still {planner!r})",
        30,
    )
    assert "of 16 GiB" in final[0], f"verdict not for the 16 GiB budget: {final[0]!r}"
    assert final[0] != moved[0], "the verdict did not change with the budget"
    shots.save(driver, cell, "phase2_explorer_moved")


@pytest.mark.heavy  # 35 s; CI keeps the explorer's real-browser test and the dashboard's own
def test_dashboard_figure_updates_while_training(driver, lab, shots):
    from selenium.webdriver.common.by import By

    from tests.browser.page import (
        code_cell,
        open_notebook,
        run_all,
        sources_while_running,
        wait_for,
    )

    open_notebook(driver, lab, DASHBOARD_NOTEBOOK)
    run_all(driver)
    cell = code_cell(driver, "Dashboard(")
    image_css = ".jp-OutputArea-output img"
    wait_for(
        driver,
        lambda d: cell.find_elements(By.CSS_SELECTOR, image_css),
        "the dashboard figure (an <img> in the training cell's output)",
        120,
    )
    seen_while_running = sources_while_running(cell, image_css, 120)
    assert len(seen_while_running) >= 2, (
        f"the dashboard figure did not change while the cell ran ({len(seen_while_running)} "
        "distinct image(s) seen)"
    )
    done = wait_for(
        driver,
        lambda d: "steps " in cell.text and cell,
        "the training cell's final 'steps N redraws M' line",
        30,
    )
    assert f"steps {DASHBOARD_STEPS}" in done.text, f"training did not finish: {done.text[-200:]}"
    figure = cell.find_elements(By.CSS_SELECTOR, image_css)[0]
    assert figure.get_attribute("src") != seen_while_running[0], "the final figure is the first"
    shots.save(driver, figure, "dashboard")


def test_phase1_loss_curve_opens(driver, lab, shots):
    from selenium.webdriver.common.by import By

    from tests.browser.page import code_cell, open_notebook, wait_for

    open_notebook(driver, lab, "phase1_baseline.ipynb")
    cell = code_cell(driver, "run_baseline(")
    figure = wait_for(
        driver,
        lambda d: next(
            iter(cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")), None
        ),
        "Phase 1's loss curve (an <img> in the run_baseline cell's output)",
        30,
    )
    wait_for(
        driver,
        lambda d: d.execute_script("return arguments[0].naturalWidth", figure) > 0,
        "a decoded loss-curve image",
        10,
    )
    shots.save(driver, figure, "phase1_loss_curve")
