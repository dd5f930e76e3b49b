"""Settings come from the environment and fail at start, naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-production-secret-" + "x" * 50,
    "ALLOWED_HOSTS": "healthorch.example.com",
    "DATABASE_URL": "postgres://healthorch:pw@127.0.0.1:5432/healthorch",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
    "EMAIL_URL": "smtp+tls://alerts:pw@127.0.0.1:587",
}


def _run(env_overrides: dict[str, str], *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        # The browser tests' Playwright loop sets DJANGO_ALLOW_ASYNC_UNSAFE for this process;
        # a production check must not inherit it.
        if key
        not in {
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DATABASE_URL",
            "CACHE_URL",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env.update({"HEALTHORCH_VAR_DIR": str(tmp_path), **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysqlx://nowhere"),
        ("CELERY_BROKER_URL", "carrier-pigeon://coop"),
        ("CACHE_URL", "floppy://disk"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "LOUD"),
        ("CONN_MAX_AGE", "forever"),
        ("EMAIL_URL", "telegraph://x"),
    ],
)
def test_an_invalid_value_fails_at_start_naming_the_variable(name, value, tmp_path):
    result = _run({**PRODUCTION, name: value}, "check", tmp_path=tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.splitlines()[-1]


def test_secret_key_is_required_without_debug(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = _run(env, "check", tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file-" + "y" * 50 + "\n")
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    env["SECRET_KEY_FILE"] = str(secret)
    result = _run(
        env,
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "from-a-file-" + "y" * 50


def test_check_deploy_is_clean_with_production_values(tmp_path):
    result = _run(PRODUCTION, "check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_env_example_documents_every_variable_settings_read():
    """Every variable read through healthorch.config appears in .env.example."""
    import re

    sources = (ROOT / "healthorch" / "settings.py").read_text()
    read = set(re.findall(r'config\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', sources))
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert read, "no variables found in settings"
    assert read - documented == set()
