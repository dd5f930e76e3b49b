"""Where the browser tests find Chromium, and what happens when it is missing.

In CI (`CI` set to anything but empty, `0` or `false`: `.ci/run` and GitHub Actions set it) a
missing browser fails every browser test with the way to install it: a green CI run promises the
console and status pages were driven in a real browser. On a laptop they skip, and the run ends
with a line saying so, so a green `make test` without a browser is never mistaken for one with.
"""

from __future__ import annotations

import os

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
MISSING = (
    f"Chromium is not installed at {CHROMIUM}: install Debian's `chromium` package "
    "(as root: apt-get install chromium; scripts/ensure_chromium.sh does it) or point "
    "CHROMIUM_PATH at a Chromium binary"
)


_SKIPPED = pytest.StashKey[int]()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> None:
    """Fail (CI) or skip (laptop) the calling test when there is no Chromium to drive."""
    if os.access(CHROMIUM, os.X_OK):
        return
    if in_ci():
        pytest.fail(f"{MISSING}. CI never skips the browser tests.", pytrace=False)
    pytest.skip(MISSING)


def pytest_terminal_summary(terminalreporter, config) -> None:
    config.stash[_SKIPPED] = sum(
        "Chromium is not installed" in str(getattr(report, "longrepr", ""))
        for report in terminalreporter.stats.get("skipped", [])
    )


def pytest_unconfigure(config) -> None:
    """The very last line of the run, after pytest's own counts."""
    skipped = config.stash.get(_SKIPPED, 0)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if skipped and reporter is not None:
        reporter.write_sep(
            "!",
            f"{skipped} BROWSER TESTS DID NOT RUN: no Chromium (apt-get install chromium, as root)",
            red=True,
            bold=True,
        )
