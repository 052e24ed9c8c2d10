"""The address guard of the workers' outgoing HTTP: a task's request cannot reach inside the network.

Every request made through `ctx.http` (the worker's shared httpx.AsyncClient, so `send_webhook` and any
other task's) connects through `GuardedBackend`. It resolves the URL's host itself (every address), and
refuses with `BlockedAddressError`, before any connection, when one of them is loopback, private
(RFC 1918), shared (CGNAT), link-local (the cloud metadata service at 169.254.169.254 included),
unique-local, multicast, unspecified or reserved (documentation and benchmarking ranges included).
IPv4 carried inside IPv6 (mapped, compatible, 6to4, NAT64) is judged as that IPv4 address. It then
connects to the very address it judged: no second DNS lookup that a rebinding name could answer
differently. Numeric spellings such as `2130706433`, `0x7f.1` or `127.1` resolve the way the socket
library reads them (127.0.0.1) and are judged as such. TLS still verifies the certificate of, and sends
SNI for, the URL's host name.

Refusing when any address is blocked (rather than using an allowed one) is deliberate: a name that
mixes public and internal addresses is either misconfigured or an attempt to reach inside.

`JOBS_WEBHOOK_ALLOWED_HOSTS` opens exact exceptions (`Allowlist`): a host name (any port, whatever it
resolves to), `host:port`, an IP address, `[IPv6]:port`, or a CIDR. Its entries are checked when the
settings load, so a bad one stops start-up with a message naming it.

Redirects are not followed (httpx's default, which the client keeps), and proxies from the environment
(HTTP_PROXY, ...) are not used: a proxy connects on the worker's behalf, past the guard.

httpx has no hook for the connecting step: `GuardedTransport` swaps the connection pool that
`httpx.AsyncHTTPTransport` keeps in `_pool` for one connecting through `GuardedBackend`. That is the one
place the package bends httpx; tests/unit/test_netguard.py checks the assumption.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import anyio
import httpcore
import httpx

from arq_jobs._errors import BlockedAddressError

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
# (host, port) → every address it resolves to; an OSError when it does not resolve
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# first match wins: the narrower ranges come before the ranges that hold them
IPV4_BLOCKED: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), reason)
    for network, reason in (
        ("0.0.0.0/32", "unspecified address"),
        ("0.0.0.0/8", 'reserved address ("this network")'),
        ("10.0.0.0/8", "private address (RFC 1918)"),
        ("100.64.0.0/10", "shared address (CGNAT, RFC 6598)"),
        ("127.0.0.0/8", "loopback address"),
        ("169.254.169.254/32", "link-local address (cloud metadata service)"),
        ("169.254.0.0/16", "link-local address"),
        ("172.16.0.0/12", "private address (RFC 1918)"),
        ("192.0.0.0/24", "reserved address (IETF protocol assignments)"),
        ("192.0.2.0/24", "reserved address (documentation)"),
        ("192.88.99.0/24", "reserved address (6to4 relay anycast)"),
        ("192.168.0.0/16", "private address (RFC 1918)"),
        ("198.18.0.0/15", "reserved address (benchmarking)"),
        ("198.51.100.0/24", "reserved address (documentation)"),
        ("203.0.113.0/24", "reserved address (documentation)"),
        ("224.0.0.0/4", "multicast address"),
        ("255.255.255.255/32", "reserved address (broadcast)"),
        ("240.0.0.0/4", "reserved address"),
    )
)
IPV6_BLOCKED: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), reason)
    for network, reason in (
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("2001::/23", "reserved address (IETF protocol assignments, Teredo included)"),
        ("2001:db8::/32", "reserved address (documentation)"),
        ("3fff::/20", "reserved address (documentation)"),
        ("fc00::/7", "unique-local address"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address (deprecated)"),
        ("ff00::/8", "multicast address"),
    )
)
GLOBAL_UNICAST = IPv6Network("2000::/3")
# IPv6 forms whose last 32 bits are the IPv4 address they reach (6to4, 2002::/16, is handled apart)
IPV4_INSIDE: tuple[tuple[IPv6Network, str], ...] = (
    (IPv6Network("::ffff:0:0/96"), "IPv4-mapped"),
    (IPv6Network("::/96"), "IPv4-compatible"),
    (IPv6Network("64:ff9b::/96"), "NAT64"),
)


def blocked_reason(ip: IPAddress) -> str | None:
    """Why a connection to `ip` is refused (e.g. "loopback address"), or None for a public address."""
    if isinstance(ip, IPv4Address):
        return next((reason for network, reason in IPV4_BLOCKED if ip in network), None)
    for network, reason in IPV6_BLOCKED[:2]:  # :: and ::1 before they read as IPv4-compatible
        if ip in network:
            return reason
    inside = ipv4_inside(ip)
    if inside is not None:
        ipv4, form = inside
        carried = blocked_reason(ipv4)
        return None if carried is None else f"{carried} {ipv4} in IPv6 form ({form})"
    for network, reason in IPV6_BLOCKED:
        if ip in network:
            return reason
    return None if ip in GLOBAL_UNICAST else "reserved address (outside IPv6 global unicast, 2000::/3)"


def ipv4_inside(ip: IPv6Address) -> tuple[IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries and the form carrying it, if it is one of those forms."""
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    for network, form in IPV4_INSIDE:
        if ip in network:
            return IPv4Address(int(ip) & 0xFFFF_FFFF), form
    return None


HOST_NAME = re.compile(
    r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?"
)
ENTRY_FORMS = (
    "a host name, host:port, an IP address, [IPv6]:port or a CIDR (e.g. 127.0.0.1/32,hooks.internal:8443)"
)


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Exact exceptions to the guard: host names (with a port, or any port) and networks (with a port,
    or any port). `parse` reads `JOBS_WEBHOOK_ALLOWED_HOSTS` entries."""

    hosts: frozenset[tuple[str, int | None]] = frozenset()
    networks: tuple[tuple[IPNetwork, int | None], ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """ValueError naming the first entry that is none of the accepted forms."""
        hosts: set[tuple[str, int | None]] = set()
        networks: list[tuple[IPNetwork, int | None]] = []
        for entry in entries:
            target, port = parse_entry(entry.strip())
            if isinstance(target, str):
                hosts.add((target, port))
            else:
                networks.append((target, port))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str, port: int) -> bool:
        """Whether `host` (as the URL spells it) is an exception, whatever it resolves to."""
        name = host.lower().removesuffix(".")
        return (name, None) in self.hosts or (name, port) in self.hosts

    def allows(self, ip: IPAddress, port: int) -> bool:
        """Whether `ip` (or the IPv4 address an IPv4-mapped `ip` is) is an exception on `port`."""
        candidates = [ip] if isinstance(ip, IPv4Address) or ip.ipv4_mapped is None else [ip, ip.ipv4_mapped]
        return any(
            candidate in network and allowed in (None, port)
            for network, allowed in self.networks
            for candidate in candidates
        )


def parse_entry(entry: str) -> tuple[str | IPNetwork, int | None]:
    """One allowlist entry: a lower-case host name or a network, and its port (None: any port)."""
    problem = f"{entry!r} is not {ENTRY_FORMS}"
    bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?", entry)
    if bracketed:
        address, port = bracketed.groups()
        try:
            network = IPv6Network(address)
        except ValueError:
            raise ValueError(problem) from None
        return network, valid_port(entry, port)
    if re.fullmatch(r"[0-9A-Fa-f:.]+/[0-9]+", entry):
        try:
            return ip_network(entry), None
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a valid CIDR: {exc}") from None
    try:
        return ip_network(entry), None  # a single address
    except ValueError:
        pass
    host, colon, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
    if colon and not re.fullmatch("[0-9]{1,5}", port):
        raise ValueError(problem)
    if not HOST_NAME.fullmatch(host):
        raise ValueError(problem)
    try:
        address = IPv4Network(host)
    except ValueError:
        pass
    else:
        return address, valid_port(entry, port or None)
    if is_numeric_ipv4(host):
        raise ValueError(f"{entry!r}: write the IPv4 address in dotted-decimal form, e.g. 127.0.0.1")
    return host.lower().removesuffix("."), valid_port(entry, port or None)


def valid_port(entry: str, port: str | None) -> int | None:
    if port is None:
        return None
    if not 0 < int(port) < 65536:
        raise ValueError(f"{entry!r}: the port must be between 1 and 65535")
    return int(port)


def is_numeric_ipv4(host: str) -> bool:
    """Whether the socket library reads `host` as an IPv4 address (`127.1`, `0x7f.1`, `2130706433`)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        scope = sockaddr[3] if len(sockaddr) == 4 else 0  # a link-local address's interface
        address = ip_address(f"{sockaddr[0]}%{scope}" if scope else sockaddr[0])
        if address not in found:
            found.append(address)
    if not found:
        raise OSError(f"{host} has no IPv4 or IPv6 address")
    return found


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the guard in front: resolve, judge every address, connect to a
    judged one (in the resolver's order until one answers)."""

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        resolver: Resolver = resolve,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allowlist = allowlist
        self._resolve = resolver
        self._backend = backend if backend is not None else httpcore.AnyIOBackend()

    async def checked(self, host: str, port: int) -> list[IPAddress]:
        """The addresses to connect to for `host`: BlockedAddressError when one of them is blocked."""
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if self.allowlist.allows_host(host, port):
            return addresses
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None and not self.allowlist.allows(address, port):
                raise BlockedAddressError(host, port, str(address), reason)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await self.checked(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout} s") from None
        failed: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failed = exc
        assert failed is not None  # checked() answers at least one address
        raise failed

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


# httpx's own defaults (httpx.AsyncClient() without `limits`)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport connecting through `backend` (HTTP/1.1, no proxy)."""

    def __init__(
        self,
        backend: GuardedBackend,
        *,
        verify: ssl.SSLContext | str | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify)
        super().__init__(verify=ssl_context, limits=limits)
        self.backend = backend
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def guarded_transport(allowed_hosts: Iterable[str]) -> GuardedTransport:
    """The transport of the workers' shared client, with `JOBS_WEBHOOK_ALLOWED_HOSTS` as exceptions."""
    return GuardedTransport(GuardedBackend(Allowlist.parse(allowed_hosts)))
