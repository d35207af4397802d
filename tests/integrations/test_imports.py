"""Each integration imports only its own framework, and the Django
integration checks its settings; each in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)


@pytest.mark.parametrize("module", ["context", "psycopg", "asyncpg", "starlette",
                                    "sqlalchemy", "django.middleware"])
def test_each_integration_imports_only_its_own_framework(module: str) -> None:
    own = {"sqlalchemy": "sqlalchemy", "django.middleware": "django"}.get(module)
    frameworks = sorted({"django", "sqlalchemy", "fastapi", "starlette", "asyncpg",
                         "psycopg_pool"} - {own})
    code = (
        "import sys\n"
        "if 'django' in " + repr(module) + ":\n"
        "    from django.conf import settings; settings.configure()\n"
        f"import auditsql.integrations.{module}\n"
        f"print(sorted(m for m in {frameworks!r} if m in sys.modules))\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("setting", "message"), [
    ({"NOPE": 1}, "settings.AUDITSQL: unknown key 'NOPE'; known: ACTOR, AUTH_EVENTS,"),
    ({"ACTOR": 3}, "settings.AUDITSQL['ACTOR'] must be a callable or its dotted path"),
    ({"TRUSTED_PROXIES": 0}, "settings.AUDITSQL['TRUSTED_PROXIES'] must be a whole number"),
])
def test_django_settings_are_checked(setting: dict[str, object], message: str) -> None:
    result = run_python(
        "from django.conf import settings\n"
        f"settings.configure(AUDITSQL={setting!r})\n"
        "from auditsql.errors import InvalidValue\n"
        "from auditsql.integrations.django.conf import config\n"
        "try:\n    config()\nexcept InvalidValue as exc:\n    print(exc)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(message)
