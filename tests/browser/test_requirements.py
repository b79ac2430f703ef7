"""The browser test's requirements: what is missing is named, with how to install it."""

from __future__ import annotations

from tests.browser.lab import free_port, missing_pieces, skip_message


def test_missing_browser_names_both_debian_packages():
    missing = missing_pieces(which=lambda name: None)
    assert missing[:2] == ["chromium", "chromium-driver"]
    message = skip_message(missing)
    assert "apt-get install chromium chromium-driver" in message
    assert message.startswith("real-browser test needs chromium, chromium-driver")


def test_present_browser_is_not_reported_missing():
    present = missing_pieces(which=lambda name: f"/usr/bin/{name}")
    assert "chromium" not in present and "chromium-driver" not in present


def test_chromium_browser_name_is_accepted():
    # Ubuntu's name for the same browser
    which = {"chromium-browser": "/usr/bin/chromium-browser", "chromedriver": "/usr/bin/x"}.get
    assert "chromium" not in missing_pieces(which=which)


def test_free_port_is_bindable():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", free_port()))
