"""The HTML report in a real browser: headless Chromium loads it, renders it and it fits a 1280-pixel window.

Skipped when chromium is not installed, unless DEID_REQUIRE_TOOLS is set (CI sets it; tests/install_browser.sh
installs chromium).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from dicom_deid.stages.report import write_reports
from helpers import sample_sessions

CHROMIUM = shutil.which("chromium")
WIDTH = 1280

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("DEID_REQUIRE_TOOLS"),
    reason="needs chromium (tests/install_browser.sh); set DEID_REQUIRE_TOOLS to fail instead of skipping",
)

# Added to a copy of the page only: the report itself holds no script.
PROBE = (
    "<script>document.body.setAttribute('data-widths', document.documentElement.scrollWidth + ' ' + "
    "document.documentElement.clientWidth)</script>"
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "chromium is not installed: run tests/install_browser.sh"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--window-size={WIDTH},2000",
        "--enable-logging=stderr", "--v=0", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """A report of a published, a published-in-part, a failed and a not-run session."""
    root = tmp_path_factory.mktemp("html")
    config, sessions = sample_sessions(root)
    page = root / "report.html"
    write_reports(config, sessions, None, page)
    return page


def test_report_loads_without_errors(page, tmp_path):
    result = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<h1>De-identification report</h1>" in result.stdout
    assert "Failed sessions" in result.stdout and "SUBJ_0002_01" in result.stdout
    assert not [line for line in result.stderr.splitlines() if ":CONSOLE" in line], result.stderr[-2000:]


def test_report_fits_a_1280_pixel_window(page, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    result = _chromium(tmp_path, "--dump-dom", probe.as_uri())
    widths = re.search(r'data-widths="(\d+) (\d+)"', result.stdout)
    assert widths, result.stderr[-2000:]
    scroll_width, client_width = map(int, widths.groups())
    assert client_width <= WIDTH and scroll_width <= client_width, f"page is {scroll_width} px wide"


def test_report_renders_to_a_screenshot(page, tmp_path):
    screenshot = tmp_path / "report.png"
    result = _chromium(tmp_path, f"--screenshot={screenshot}", page.as_uri())
    assert result.returncode == 0 and screenshot.exists(), result.stderr[-2000:]
    header = screenshot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (WIDTH, 2000)
