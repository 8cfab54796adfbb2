"""Production configuration: Django's deploy checks, the refusal to run without a secret, the compose file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.live import ROOT, server_env

PRODUCTION = {
    "DJANGO_SECRET_KEY": "a-production-secret-that-is-long-and-random-enough-for-django-checks-0123456789",
    "DJANGO_ALLOWED_HOSTS": "chat.example.com",
    "DJANGO_HSTS_SECONDS": "31536000",
    "DJANGO_SSL_REDIRECT": "1",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=server_env(**env), cwd=ROOT, capture_output=True, text=True
    )


def test_deploy_checks_pass_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_app_refuses_to_start_without_a_secret_key_outside_debug():
    result = manage("check")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is not set" in result.stderr


def test_the_compose_file_is_valid():
    if not shutil.which("docker-compose"):
        message = "docker-compose not installed: the compose file was NOT checked (apt-get install docker-compose)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        ["docker-compose", "config", "--services"],
        env={**os.environ, "DJANGO_SECRET_KEY": "x"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"postgres", "redis", "migrate", "web1", "web2", "nginx"}


def test_every_setting_read_from_the_environment_is_documented():
    read = set(re.findall(r'env_\w+\("([A-Z0-9_]+)"', (ROOT / "chatproject" / "settings.py").read_text()))
    readme, example = (ROOT / "README.md").read_text(), (ROOT / ".env.example").read_text()
    assert read, "no settings found: the pattern no longer matches settings.py"
    table_rows = [line for line in readme.splitlines() if line.startswith("| `")]
    undocumented = [name for name in read if not any(f"`{name}`" in row for row in table_rows)]
    assert sorted(undocumented) == [], "missing from the README's table"
    assert sorted(name for name in read if not re.search(rf"^#? ?{name}=", example, re.M)) == [], ".env.example"


def test_the_server_freezes_what_it_loaded_and_collects_less_often():
    """`chatproject.server` calls this once daphne is ready (`ChatServer.ready`); in a process of its own, since it
    changes the collector for the whole process."""
    code = (
        "import gc; from chatproject.server import GC_THRESHOLDS, collect_less; collect_less(); "
        "print(gc.get_freeze_count() > 1000, gc.get_threshold() == GC_THRESHOLDS, GC_THRESHOLDS[0] > 700)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True", "True"]
