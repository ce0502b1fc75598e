"""Production guard rails and Django's deployment checklist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "k" * 20 + "Zq8#x!Lm2@Vw9$Rt5%Yp7^Hn3&Bc6*Jd4(Fg1)" + "s" * 10


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "PRODUCTION", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION_ENV = {
    "PRODUCTION": "1",
    "SECRET_KEY": GOOD_SECRET,
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/citizen",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "JOBS_INLINE": "0",
    "SMS_BACKEND": "http",
    "PUSH_BACKEND": "fcm",
    "ALLOWED_HOSTS": "api.example.vn",
}


def test_check_deploy_is_clean_with_production_values() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_default_secret() -> None:
    env = {**PRODUCTION_ENV}
    del env["SECRET_KEY"]
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_embedded_backends() -> None:
    env = {
        **PRODUCTION_ENV,
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "SMS_BACKEND": "file",
        "PUSH_BACKEND": "file",
    }
    result = run_manage("check", **env)
    assert result.returncode != 0
    for problem in ["PostgreSQL", "REDIS_URL", "SMS_BACKEND", "PUSH_BACKEND"]:
        assert problem in result.stderr


def test_defaults(settings) -> None:
    assert settings.TIME_ZONE == "Asia/Ho_Chi_Minh"
    assert settings.USE_TZ is True
    assert settings.LANGUAGE_CODE == "vi"
    assert [code for code, _ in settings.LANGUAGES] == ["vi", "en"]
    assert settings.AUTH_USER_MODEL == "accounts.User"
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_s3_storage_needs_a_bucket() -> None:
    result = run_manage("check", STORAGE_BACKEND="s3", S3_BUCKET="")
    assert result.returncode != 0
    assert "STORAGE_BACKEND=s3 needs S3_BUCKET" in result.stderr


def test_s3_storage_is_built_from_the_environment() -> None:
    code = (
        "from django.conf import settings; o = settings.STORAGES['default']; "
        "print(o['BACKEND'], o['OPTIONS']['bucket_name'], o['OPTIONS']['endpoint_url'], "
        "o['OPTIONS']['region_name'], o['OPTIONS']['addressing_style'], "
        "o['OPTIONS']['default_acl'])"
    )
    result = run_manage(
        "shell",
        "-c",
        code,
        STORAGE_BACKEND="s3",
        S3_BUCKET="papers",
        S3_ENDPOINT_URL="https://s3.example.vn",
        S3_REGION="hn-1",
        S3_ADDRESSING_STYLE="virtual",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "storages.backends.s3.S3Storage",
        "papers",
        "https://s3.example.vn",
        "hn-1",
        "virtual",
        "None",
    ]
