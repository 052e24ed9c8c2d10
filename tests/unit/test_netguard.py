"""arq_jobs._netguard: which addresses the workers' HTTP client refuses, the allowlist, and that it
connects to the very address it judged. Nothing here connects anywhere: connections go to a fake
backend, and host names resolve through a fake resolver (or, for numeric spellings and `localhost`,
through getaddrinfo, which answers those without asking DNS)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from ipaddress import ip_address

import httpcore
import httpx
import pytest

from arq_jobs import BlockedAddressError
from arq_jobs._netguard import (
    Allowlist,
    GuardedBackend,
    GuardedTransport,
    IPAddress,
    blocked_reason,
    guarded_transport,
    resolve,
)

LOOPBACK = "loopback address"
PRIVATE = "private address (RFC 1918)"
DOCUMENTATION = "reserved address (documentation)"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", LOOPBACK),
        ("127.255.255.254", LOOPBACK),
        ("::1", LOOPBACK),
        ("::ffff:127.0.0.1", "loopback address 127.0.0.1 in IPv6 form (IPv4-mapped)"),
        ("::ffff:7f00:1", "loopback address 127.0.0.1 in IPv6 form (IPv4-mapped)"),
        ("::127.0.0.1", "loopback address 127.0.0.1 in IPv6 form (IPv4-compatible)"),
        ("10.0.0.1", PRIVATE),
        ("172.16.0.1", PRIVATE),
        ("172.31.255.255", PRIVATE),
        ("192.168.1.1", PRIVATE),
        ("100.64.0.1", "shared address (CGNAT, RFC 6598)"),
        ("100.127.255.254", "shared address (CGNAT, RFC 6598)"),
        ("169.254.169.254", "link-local address (cloud metadata service)"),
        ("169.254.1.1", "link-local address"),
        ("fe80::1", "link-local address"),
        ("fe80::1%2", "link-local address"),
        ("fc00::1", "unique-local address"),
        ("fd00::1", "unique-local address"),
        ("fd00:ec2::254", "unique-local address"),
        ("fec0::1", "site-local address (deprecated)"),
        ("224.0.0.1", "multicast address"),
        ("239.255.255.250", "multicast address"),
        ("ff02::1", "multicast address"),
        ("0.0.0.0", "unspecified address"),
        ("0.1.2.3", 'reserved address ("this network")'),
        ("::", "unspecified address"),
        ("240.0.0.1", "reserved address"),
        ("255.255.255.255", "reserved address (broadcast)"),
        ("192.0.0.8", "reserved address (IETF protocol assignments)"),
        ("192.0.2.1", DOCUMENTATION),
        ("198.51.100.7", DOCUMENTATION),
        ("203.0.113.9", DOCUMENTATION),
        ("198.18.0.1", "reserved address (benchmarking)"),
        ("192.88.99.1", "reserved address (6to4 relay anycast)"),
        ("2001:db8::1", DOCUMENTATION),
        ("3fff::1", DOCUMENTATION),
        ("2001::1", "reserved address (IETF protocol assignments, Teredo included)"),
        ("100::1", "reserved address (outside IPv6 global unicast, 2000::/3)"),
        ("64:ff9b::a00:1", "private address (RFC 1918) 10.0.0.1 in IPv6 form (NAT64)"),
        (
            "64:ff9b::a9fe:a9fe",
            "link-local address (cloud metadata service) 169.254.169.254 in IPv6 form (NAT64)",
        ),
        ("64:ff9b:1::1", "reserved address (outside IPv6 global unicast, 2000::/3)"),
        ("2002:0a00:0001::", "private address (RFC 1918) 10.0.0.1 in IPv6 form (6to4)"),
        ("2002:7f00:1::1", "loopback address 127.0.0.1 in IPv6 form (6to4)"),
        ("::ffff:0.0.0.0", "unspecified address 0.0.0.0 in IPv6 form (IPv4-mapped)"),
    ],
)
def test_internal_addresses_are_blocked_with_the_reason(address: str, reason: str) -> None:
    assert blocked_reason(ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "1.1.1.1",
        "8.8.8.8",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above it
        "172.15.255.255",  # just below 172.16/12
        "172.32.0.0",  # just above it
        "2606:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:93.184.216.34",  # a public IPv4 address, IPv4-mapped
        "64:ff9b::5db8:d822",  # ... through NAT64
        "2002:5db8:d822::1",  # ... through 6to4
    ],
)
def test_public_addresses_are_not_blocked(address: str) -> None:
    assert blocked_reason(ip_address(address)) is None


class FakeStream(httpcore.AsyncMockStream):
    """A connection that answers 204 and records what was written and the TLS server name asked for."""

    def __init__(self) -> None:
        super().__init__([b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"])
        self.written = b""
        self.server_hostname: str | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.written += buffer

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        self.server_hostname = server_hostname
        return self


class FakeBackend(httpcore.AsyncNetworkBackend):
    """Records every connection asked for; refuses those to `unreachable` (ConnectError)."""

    def __init__(self, unreachable: Iterable[str] = ()) -> None:
        self.connects: list[tuple[str, int]] = []
        self.streams: list[FakeStream] = []
        self.unreachable = set(unreachable)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host in self.unreachable:
            raise httpcore.ConnectError(f"{host} unreachable")
        self.streams.append(FakeStream())
        return self.streams[-1]


class FakeResolver:
    """Answers the n-th lookup with `answers[n]` (the last one from then on), like a rebinding DNS."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = answers
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append((host, port))
        answer = self.answers[min(len(self.lookups), len(self.answers)) - 1]
        return [ip_address(a) for a in answer]


def client(backend: GuardedBackend) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=GuardedTransport(backend))


async def test_a_name_resolving_inside_is_refused_before_any_connection() -> None:
    fake = FakeBackend()
    resolver = FakeResolver(["10.0.0.1"])
    async with client(GuardedBackend(Allowlist(), resolver=resolver, backend=fake)) as http:
        with pytest.raises(BlockedAddressError) as refused:
            await http.post("https://hooks.example/in", json={})
    assert str(refused.value) == (
        "host hooks.example is blocked: it resolves to 10.0.0.1 (private address (RFC 1918)); "
        "JOBS_WEBHOOK_ALLOWED_HOSTS opens exceptions"
    )
    assert refused.value.details() == {
        "host": "hooks.example",
        "port": 443,
        "address": "10.0.0.1",
        "reason": PRIVATE,
    }
    assert (resolver.lookups, fake.connects) == ([("hooks.example", 443)], [])


async def test_one_internal_address_among_public_ones_is_enough_to_refuse() -> None:
    fake = FakeBackend()
    resolver = FakeResolver(["93.184.216.34", "2606:4700::1111", "169.254.169.254"])
    async with client(GuardedBackend(Allowlist(), resolver=resolver, backend=fake)) as http:
        with pytest.raises(BlockedAddressError) as refused:
            await http.get("http://hooks.example/")
    assert (refused.value.address, refused.value.reason) == (
        "169.254.169.254",
        "link-local address (cloud metadata service)",
    )
    assert fake.connects == []


async def test_connects_to_the_address_it_checked_and_never_resolves_again() -> None:
    fake = FakeBackend()
    resolver = FakeResolver(["93.184.216.34"], ["10.0.0.1"])  # a rebinding name: public, then inside
    async with client(GuardedBackend(Allowlist(), resolver=resolver, backend=fake)) as http:
        response = await http.post("http://hooks.example:8080/in", content=b"{}")
    assert response.status_code == 204
    assert resolver.lookups == [("hooks.example", 8080)]
    assert fake.connects == [("93.184.216.34", 8080)]
    assert b"\r\nHost: hooks.example:8080\r\n" in fake.streams[0].written


async def test_tls_verifies_and_names_the_urls_host_not_the_address() -> None:
    fake = FakeBackend()
    resolver = FakeResolver(["93.184.216.34"])
    async with client(GuardedBackend(Allowlist(), resolver=resolver, backend=fake)) as http:
        response = await http.get("https://hooks.example/")
    assert response.status_code == 204
    assert fake.connects == [("93.184.216.34", 443)]
    assert fake.streams[0].server_hostname == "hooks.example"


async def test_tries_the_checked_addresses_in_order_until_one_connects() -> None:
    fake = FakeBackend(unreachable={"2606:4700::1111"})
    resolver = FakeResolver(["2606:4700::1111", "93.184.216.34"])
    async with client(GuardedBackend(Allowlist(), resolver=resolver, backend=fake)) as http:
        response = await http.get("http://hooks.example/")
    assert response.status_code == 204
    assert fake.connects == [("2606:4700::1111", 80), ("93.184.216.34", 80)]


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    async def no_such_host(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    fake = FakeBackend()
    async with client(GuardedBackend(Allowlist(), resolver=no_such_host, backend=fake)) as http:
        with pytest.raises(httpx.ConnectError, match=r"^cannot resolve nowhere\.example: "):
            await http.get("http://nowhere.example/")
    assert fake.connects == []


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:8080/", "127.0.0.1"),
        ("http://127.1:8080/", "127.1"),
        ("http://0x7f.1:8080/", "0x7f.1"),
        ("http://2130706433:8080/", "2130706433"),
        ("http://017700000001:8080/", "017700000001"),
        ("http://0x7f000001:8080/", "0x7f000001"),
        ("http://localhost:8080/", "localhost"),
        ("http://[::1]:8080/", "::1"),
        ("http://[::ffff:127.0.0.1]:8080/", "::ffff:127.0.0.1"),
        ("http://0:8080/", "0"),
    ],
)
async def test_numeric_spellings_are_judged_as_the_address_they_reach(url: str, host: str) -> None:
    """httpx leaves these hosts as written (pydantic's URL type would normalise them, the guard does
    not rely on it); the real resolver reads them as the socket library does, without asking DNS."""
    assert httpx.URL(url).host == host
    fake = FakeBackend()
    async with client(GuardedBackend(Allowlist(), backend=fake)) as http:
        with pytest.raises(BlockedAddressError) as refused:
            await http.get(url)
    assert refused.value.host == host
    assert refused.value.reason in {
        LOOPBACK,
        "unspecified address",
        f"{LOOPBACK} 127.0.0.1 in IPv6 form (IPv4-mapped)",
    }
    assert fake.connects == []


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
    ],
)
async def test_the_resolver_reads_numeric_spellings_like_the_socket_library(
    spelling: str, address: str
) -> None:
    assert await resolve(spelling, 80) == [ip_address(address)]


# --- the allowlist -----------------------------------------------------------------------------


async def checked(entries: list[str], host: str, port: int, answer: str) -> list[IPAddress]:
    backend = GuardedBackend(Allowlist.parse(entries), resolver=FakeResolver([answer]), backend=FakeBackend())
    return await backend.checked(host, port)


async def test_a_host_name_entry_opens_that_name_on_any_port() -> None:
    assert await checked(["hooks.internal"], "hooks.internal", 8443, "10.0.0.5") == [ip_address("10.0.0.5")]
    assert await checked(["Hooks.Internal."], "HOOKS.internal", 80, "10.0.0.5") == [ip_address("10.0.0.5")]
    with pytest.raises(BlockedAddressError):  # the name, not the address it has today
        await checked(["hooks.internal"], "other.internal", 80, "10.0.0.5")


async def test_a_host_port_entry_opens_only_that_port() -> None:
    assert await checked(["hooks.internal:8443"], "hooks.internal", 8443, "10.0.0.5") == [
        ip_address("10.0.0.5")
    ]
    with pytest.raises(BlockedAddressError) as refused:
        await checked(["hooks.internal:8443"], "hooks.internal", 8444, "10.0.0.5")
    assert (refused.value.port, refused.value.address) == (8444, "10.0.0.5")
    assert await checked(["127.0.0.1:9000"], "127.0.0.1", 9000, "127.0.0.1") == [ip_address("127.0.0.1")]
    with pytest.raises(BlockedAddressError):
        await checked(["127.0.0.1:9000"], "127.0.0.1", 9001, "127.0.0.1")
    assert await checked(["[::1]:9000"], "::1", 9000, "::1") == [ip_address("::1")]
    with pytest.raises(BlockedAddressError):
        await checked(["[::1]:9000"], "::1", 9001, "::1")


async def test_a_cidr_entry_opens_the_addresses_inside_it() -> None:
    assert await checked(["10.0.0.0/8"], "a.internal", 80, "10.20.30.40") == [ip_address("10.20.30.40")]
    with pytest.raises(BlockedAddressError):
        await checked(["10.0.0.0/8"], "a.internal", 80, "192.168.1.1")
    assert await checked(["fd00::/8"], "b.internal", 80, "fd12::1") == [ip_address("fd12::1")]


async def test_an_address_entry_opens_it_whatever_the_name_and_in_its_ipv4_mapped_form() -> None:
    assert await checked(["127.0.0.1"], "localhost", 80, "127.0.0.1") == [ip_address("127.0.0.1")]
    assert await checked(["127.0.0.1"], "x", 80, "::ffff:127.0.0.1") == [ip_address("::ffff:127.0.0.1")]
    with pytest.raises(BlockedAddressError):
        await checked(["127.0.0.1"], "localhost", 80, "127.0.0.2")
    with pytest.raises(BlockedAddressError):
        await checked(["127.0.0.1"], "localhost", 80, "::1")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "*.example.com",
            "'*.example.com' is not a host name, host:port, an IP address, [IPv6]:port or a CIDR",
        ),
        ("hooks.internal:http", "'hooks.internal:http' is not a host name, host:port, an IP address,"),
        ("[::1]:x", "'[::1]:x' is not a host name, host:port, an IP address, [IPv6]:port or a CIDR"),
        ("[127.0.0.1]:80", "'[127.0.0.1]:80' is not a host name, host:port, an IP address,"),
        ("hooks.internal:0", "'hooks.internal:0': the port must be between 1 and 65535"),
        ("[::1]:70000", "'[::1]:70000': the port must be between 1 and 65535"),
        ("10.0.0.1/8", "'10.0.0.1/8' is not a valid CIDR: 10.0.0.1/8 has host bits set"),
        ("127.1", "'127.1': write the IPv4 address in dotted-decimal form, e.g. 127.0.0.1"),
        ("2130706433:80", "'2130706433:80': write the IPv4 address in dotted-decimal form, e.g. 127.0.0.1"),
        ("http://hooks.internal", "'http://hooks.internal' is not a host name, host:port, an IP address,"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(entry: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        Allowlist.parse([entry])
    assert str(refused.value).startswith(message)


def test_parsing_reads_every_form() -> None:
    parsed = Allowlist.parse(
        ["hooks.internal", "api.internal:8443", "127.0.0.1", "::1", "[::1]:8000", "10.0.0.0/8"]
    )
    assert parsed.hosts == frozenset({("hooks.internal", None), ("api.internal", 8443)})
    assert [(str(network), port) for network, port in parsed.networks] == [
        ("127.0.0.1/32", None),
        ("::1/128", None),
        ("::1/128", 8000),
        ("10.0.0.0/8", None),
    ]


# --- the httpx internals the transport relies on -----------------------------------------------


def test_assumption_httpx_transport_sends_through_its_pool_attribute() -> None:
    """GuardedTransport swaps `httpx.AsyncHTTPTransport._pool`: when httpx renames or restructures it,
    this fails first (and the transport would connect without the guard)."""
    transport = httpx.AsyncHTTPTransport()
    assert isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool), (
        "assumption broken: httpx.AsyncHTTPTransport no longer keeps an httpcore.AsyncConnectionPool in "
        "`_pool`; arq_jobs._netguard.GuardedTransport must be adapted"
    )
    guarded = guarded_transport(["127.0.0.1"])
    assert isinstance(guarded._pool, httpcore.AsyncConnectionPool)
    assert guarded.backend.allowlist == Allowlist.parse(["127.0.0.1"])
