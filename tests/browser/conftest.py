"""On a failed browser test: a screenshot of the whole page and the tail of JupyterLab's log."""

from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    driver, shots, lab = (item.funcargs.get(name) for name in ("driver", "shots", "lab"))
    if report.when == "call" and report.failed and driver and shots:
        path = shots.folders[0] / f"failed-{item.name}.png"  # the test folder, never docs/
        driver.save_screenshot(str(path))
        report.sections.append(("browser", f"the page at the failure: {path}"))
        if lab is not None and lab.log.is_file():
            tail = lab.log.read_text(errors="replace")[-3000:]
            report.sections.append(("JupyterLab log (tail)", tail))
    return report
