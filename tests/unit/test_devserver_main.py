"""devserver/__main__.py: what `make run` gives its processes: the webhook address guard's loopback
exceptions, and authentication off unless the user chose it."""

from __future__ import annotations

import pytest

from arq_jobs._config import Settings
from arq_jobs._netguard import Allowlist
from devserver.__main__ import authentication, webhook_exceptions

from .conftest import make_settings


def test_make_run_lets_webhooks_reach_loopback_when_the_user_chose_nothing() -> None:
    env, line = webhook_exceptions(make_settings())
    assert env == {"JOBS_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1,::1,localhost"}
    assert line == (
        "webhooks may reach loopback (JOBS_WEBHOOK_ALLOWED_HOSTS=127.0.0.1,::1,localhost; set it to change this)"
    )
    Allowlist.parse(env["JOBS_WEBHOOK_ALLOWED_HOSTS"].split(","))  # a value the workers accept


def test_the_users_choice_is_kept_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_WEBHOOK_ALLOWED_HOSTS", "hooks.internal:8443")
    env, line = webhook_exceptions(make_settings(webhook_allowed_hosts=("hooks.internal:8443",)))
    assert env == {}
    assert (
        line
        == "webhooks may reach internal hosts only as JOBS_WEBHOOK_ALLOWED_HOSTS allows: hooks.internal:8443"
    )


def test_an_empty_choice_means_no_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_WEBHOOK_ALLOWED_HOSTS", "")
    env, line = webhook_exceptions(make_settings())
    assert env == {}
    assert line == "webhooks may reach internal hosts only as JOBS_WEBHOOK_ALLOWED_HOSTS allows: (none)"


def test_make_run_turns_authentication_off_and_says_so() -> None:
    env, line = authentication(Settings(_env_file=None))  # type: ignore[call-arg]
    assert env == {"JOBS_AUTH": "off"}
    assert line == (
        "authentication is OFF for local development (JOBS_AUTH=off: the API serves loopback clients "
        "only); JOBS_AUTH=keys turns API keys on"
    )


def test_a_chosen_authentication_is_kept_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_AUTH", "keys")
    env, line = authentication(Settings(_env_file=None))  # type: ignore[call-arg]
    assert env == {}
    assert line == (
        "authentication: API keys (JOBS_AUTH=keys); make one with `arq-jobs keys create NAME --scope admin`"
    )
