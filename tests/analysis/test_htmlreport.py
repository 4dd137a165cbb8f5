"""The HTML report of a small sim run: sections, inlined plots, and a real browser's view."""
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from maker_local.analysis.htmlreport import write_html

SECTIONS = ("summary", "undecided", "votes", "flags", "length", "tokens", "hardest", "replay")
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
# set a data attribute once every image has decoded; looked for in the dumped DOM
PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  if (imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0))
    document.body.setAttribute('data-images-ok', String(imgs.length));
});</script>"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from maker_local.cli import main

    run = tmp_path_factory.mktemp("html") / "run"
    code = main(["solve", "--backend", "sim",
                 "--disks", "6", "--sim-error", "0.15", "--sim-valid", "0.9",
                 "--run-dir", str(run), "--quiet"])
    assert code in (0, 1)
    return run


def test_page_has_every_section_and_inline_plots(run_dir):
    page = write_html(run_dir).read_text()
    for s in SECTIONS:
        assert f'<section id="{s}">' in page
    imgs = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert len(imgs) == 5 and all(i.startswith("data:image/png;base64,") for i in imgs)
    # self-contained: nothing fetched from anywhere
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page
    # hardest steps list their competing answers, with the winner marked
    assert "(won)" in page and "vote key" in page


def test_report_command_writes_html_and_prints_its_path(cli, run_dir):
    code, out, _ = cli("report", run_dir, "--html")
    assert code == 0
    assert out.strip().splitlines()[-1] == str(run_dir / "report.html")
    code, out, err = cli("report", run_dir, "--html", "--json")
    assert code == 0 and out.lstrip().startswith("{") and "report.html" in err


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("MAKER_LOCAL_REQUIRE_BROWSER") != "1",
                    reason="chromium is not installed (apt-get install chromium)")
def test_a_headless_browser_renders_the_page(run_dir, tmp_path):
    page = write_html(run_dir).read_text()
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000",
              probed.as_uri())
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1200, 3000)
    assert len(png) > 50_000  # text, tables and plots, not a blank page
    dom = _chromium(tmp_path, "--dump-dom", "--virtual-time-budget=5000", probed.as_uri())
    assert 'data-images-ok="5"' in dom.stdout, dom.stderr[-2000:]
