"""`require_admin`: the dashboard is open without JOBS_ADMIN_TOKEN; with it, a request needs the token
as a Bearer token or as the password of HTTP Basic, else 401 with a Basic challenge."""

from __future__ import annotations

import base64

import pytest
from arq.connections import ArqRedis

from arq_jobs._api.auth import presented_token, token_matches

from .test_dashboard_pages import dashboard_client

TOKEN = "s3cret-Token"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_without_an_admin_token_the_dashboard_is_open(arq_redis: ArqRedis) -> None:
    async with dashboard_client(arq_redis) as client:
        assert (await client.get("/dashboard/")).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Bearer", basic("admin", "wrong"), "Basic !!notbase64", "Digest abc", "s3cret"],
)
async def test_with_an_admin_token_a_request_without_it_is_401_with_a_basic_challenge(
    arq_redis: ArqRedis, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with dashboard_client(arq_redis, admin_token=TOKEN) as client:
        answer = await client.get("/dashboard/", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Basic realm="arq-jobs"'
        assert answer.headers["content-type"].startswith("text/html")
        assert "needs the admin token" in answer.text
        # actions too, before any other check
        post = await client.post(
            "/dashboard/jobs/x/cancel", headers={**headers, "Sec-Fetch-Site": "same-origin"}
        )
        assert post.status_code == 401


async def test_with_an_admin_token_bearer_or_basic_password_lets_through(arq_redis: ArqRedis) -> None:
    async with dashboard_client(arq_redis, admin_token=TOKEN) as client:
        for authorization in (f"Bearer {TOKEN}", f"bearer {TOKEN}", basic("anyone", TOKEN), basic("", TOKEN)):
            answer = await client.get("/dashboard/workers", headers={"Authorization": authorization})
            assert answer.status_code == 200, authorization
        # the job API is not behind the admin token
        assert (await client.get("/health/live")).status_code == 200


async def test_a_non_ascii_token_works_as_a_basic_password(arq_redis: ArqRedis) -> None:
    async with dashboard_client(arq_redis, admin_token="pässwörd") as client:
        assert (
            await client.get("/dashboard/", headers={"Authorization": basic("u", "pässwörd")})
        ).status_code == 200
        assert (
            await client.get("/dashboard/", headers={"Authorization": basic("u", "passwort")})
        ).status_code == 401


def test_presented_token_reads_bearer_and_basic() -> None:
    assert presented_token(f"Bearer {TOKEN}") == TOKEN
    assert presented_token(basic("u", "p:with:colons")) == "p:with:colons"
    assert presented_token(base64.b64encode(b"no-colon").decode()) is None
    assert presented_token("Basic " + base64.b64encode(b"no-colon").decode()) is None
    assert presented_token(None) is None and presented_token("") is None
    assert (
        token_matches(TOKEN, TOKEN) and not token_matches(None, TOKEN) and not token_matches("s3cret", TOKEN)
    )
