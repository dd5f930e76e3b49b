"""The import contract (pyproject.toml, `lint-imports` in `make lint`) holds on the code as it
is, and refuses an upward import: a copy of the code with one added is broken, and the report
names the import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy_of_the_code(tmp_path: Path) -> Path:
    for package in ("apps", "healthorch"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_code_keeps_every_contract(copy_of_the_code):
    run = _lint(copy_of_the_code)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("apps/core/db.py", "apps.monitors.models"),  # the ground floor reaching up
        ("apps/monitors/rollups.py", "apps.incidents.models"),  # monitors below incidents
        ("apps/billing/services.py", "apps.monitors.models"),  # billing knows no monitor
        ("apps/reports/selectors.py", "apps.alerts.models"),  # reports page no one
        ("apps/tenants/services.py", "apps.console.figures"),  # nobody imports the console
        ("healthorch/metrics.py", "apps.core.db"),  # the project's shared modules know no app
    ],
)
def test_an_upward_import_breaks_the_contract(copy_of_the_code, module, upward):
    path = copy_of_the_code / module
    path.write_text(path.read_text() + f"\nimport {upward}  # noqa: E402\n")
    run = _lint(copy_of_the_code)
    assert run.returncode != 0
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {upward}" in run.stdout, run.stdout
