"""Look at a report as a user does: render DIR/report/report.html in headless Chromium (Debian's
``chromium`` package) at 1280x900, save the first screen as a PNG, and check that the rendered
page holds the headline and the detector table.

    python benchmarks/report_screenshot.py runs/quickstart [shot.png]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    sys.exit("no Chromium found: apt-get install chromium")


def render(run: Path, shot: Path) -> str:
    """Screenshot of the first screen into ``shot``; returns the DOM after rendering."""
    page = (run / "report" / "report.html").resolve().as_uri()
    common = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--window-size=1280,900"]
    subprocess.run(common + [f"--screenshot={shot}", page], check=True, capture_output=True)
    return subprocess.run(common + ["--dump-dom", page], check=True, capture_output=True,
                          text=True).stdout


def main() -> None:
    run = Path(sys.argv[1])
    shot = Path(sys.argv[2] if len(sys.argv) > 2 else run / "report_screen.png")
    dom = render(run, shot)
    checks = {"headline": 'class="what"' in dom, "answer": 'class="answer"' in dom,
              "detector table": "detected [95 %]" in dom, "figures": dom.count("<img") >= 2}
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'MISSING'} {name}")
    print(f"first screen: {shot}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
