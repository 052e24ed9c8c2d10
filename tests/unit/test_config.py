from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import RedisDsn

from arq_jobs import _config as config
from arq_jobs._config import Settings, load_settings


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config.get_settings.cache_clear()
    monkeypatch.chdir("/")  # no .env file here


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings()
    assert settings.redis_url == RedisDsn("redis://127.0.0.1:6379/0")
    assert settings.queue_name == "default"
    assert settings.worker_concurrency == 100
    assert settings.poll_delay_s == 0.05
    assert settings.job_timeout_s == 300
    assert settings.result_ttl_s == 86_400
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8000)
    assert settings.log_level == "INFO"


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_REDIS_URL", "redis://redis:6380/2")
    monkeypatch.setenv("JOBS_WORKER_CONCURRENCY", "32")
    monkeypatch.setenv("JOBS_POLL_DELAY_S", "0.01")
    monkeypatch.setenv("JOBS_LOG_LEVEL", "DEBUG")
    settings = load_settings()
    assert str(settings.redis_url) == "redis://redis:6380/2"
    assert settings.worker_concurrency == 32
    assert settings.poll_delay_s == 0.01
    assert settings.log_level == "DEBUG"


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("JOBS_QUEUES=reports,default\nJOBS_QUEUE_NAME=reports\n")
    assert Settings().queue_name == "reports"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "JOBS_WORKER_CONCURRENCY",
            "0",
            "invalid settings: JOBS_WORKER_CONCURRENCY: Input should be greater than 0",
        ),
        ("JOBS_API_PORT", "http", "invalid settings: JOBS_API_PORT: Input should be a valid integer"),
        ("JOBS_REDIS_URL", "mysql://x", "invalid settings: JOBS_REDIS_URL: URL scheme should be"),
        ("JOBS_LOG_LEVEL", "LOUD", "invalid settings: JOBS_LOG_LEVEL: Input should be 'DEBUG'"),
        (
            "JOBS_KEY_PREFIX",
            "arq",
            "invalid settings: JOBS_KEY_PREFIX: Value error, must not be 'arq' or start with 'arq:'",
        ),
        (
            "JOBS_KEY_PREFIX",
            "arq:x",
            "invalid settings: JOBS_KEY_PREFIX: Value error, must not be 'arq' or start with 'arq:'",
        ),
    ],
)
def test_bad_value_stops_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings()
    message = str(stopped.value.code)
    assert message.startswith(expected)
    assert "\n" not in message


def test_queues_and_their_concurrency_come_from_comma_separated_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (Settings().queues, Settings().queue_concurrency) == (("high", "default", "low"), {})
    monkeypatch.setenv("JOBS_QUEUES", " high, default ,low,bulk-email,")
    monkeypatch.setenv("JOBS_QUEUE_CONCURRENCY", "high=20, bulk-email=2")
    monkeypatch.setenv("JOBS_WORKER_CONCURRENCY", "50")
    settings = load_settings()
    assert settings.queues == ("high", "default", "low", "bulk-email")
    assert settings.queue_concurrency == {"high": 20, "bulk-email": 2}
    assert [settings.concurrency_for(q) for q in settings.queues] == [20, 50, 50, 2]


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"JOBS_QUEUE_NAME": "reports"},
            "invalid settings: JOBS_QUEUE_NAME: 'reports' is not one of JOBS_QUEUES (high, default, low)",
        ),
        (
            {"JOBS_QUEUES": "high,low"},
            "invalid settings: JOBS_QUEUE_NAME: 'default' is not one of JOBS_QUEUES (high, low)",
        ),
        (
            {"JOBS_QUEUE_CONCURRENCY": "high=20,urgent=5"},
            "invalid settings: JOBS_QUEUE_CONCURRENCY: 'urgent' is not one of JOBS_QUEUES (high, default, low)",
        ),
        (
            {"JOBS_QUEUE_NAME": "reports", "JOBS_QUEUE_CONCURRENCY": "urgent=5,bulk=1"},
            "invalid settings: JOBS_QUEUE_NAME: 'reports' is not one of JOBS_QUEUES (high, default, low); "
            "JOBS_QUEUE_CONCURRENCY: 'urgent', 'bulk' are not among JOBS_QUEUES (high, default, low)",
        ),
        (
            {"JOBS_QUEUE_CONCURRENCY": "high"},
            "invalid settings: JOBS_QUEUE_CONCURRENCY: Value error, expected queue=jobs pairs such as high=20,low=10, got 'high'",
        ),
        (
            {"JOBS_QUEUE_CONCURRENCY": "high=0"},
            "invalid settings: JOBS_QUEUE_CONCURRENCY: Value error, 'high=0': the number must be a whole number above 0",
        ),
        (
            {"JOBS_QUEUE_CONCURRENCY": "high=1,high=2"},
            "invalid settings: JOBS_QUEUE_CONCURRENCY: Value error, queue 'high' is given more than once",
        ),
        (
            {"JOBS_QUEUES": "high,default,high"},
            "invalid settings: JOBS_QUEUES: Value error, 'high' is listed more than once",
        ),
        (
            {"JOBS_QUEUES": "default,bulk email"},
            "invalid settings: JOBS_QUEUES: Value error, 'bulk email' is not a valid queue name (use letters, digits, '_', '.', '-')",
        ),
        (
            {"JOBS_QUEUES": "default,bulk-email,bulk_email"},
            "invalid settings: JOBS_QUEUES: Value error, 'bulk-email' and 'bulk_email' would share the worker settings name BulkEmailWorkerSettings",
        ),
        ({"JOBS_QUEUES": " , "}, "invalid settings: JOBS_QUEUES: Value error, name at least one queue"),
    ],
)
def test_bad_queue_settings_stop_with_one_exact_line(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings()
    assert stopped.value.code == expected
