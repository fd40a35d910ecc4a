"""Network and API resources: endpoint patterns and requested endpoints.

A pattern is ``[scheme://]HOST[:PORT][/PATH]``:

* HOST is a host-name glob (labels split on ``.``; ``*`` one label,
  ``**`` any number of labels, so ``*`` or ``**`` alone is any host), an IP
  address, or a CIDR block (``10.0.0.0/8``, ``[fd00::/8]``; IPv6 in
  brackets when a port or path follows);
* PORT is ``*``, a number or a range ``8000-8999`` (absent = any port);
* PATH is a path glob for the URL path (absent = any path; ``/**`` also
  matches the bare host). The seed's ``127.0.0.1/**`` is "127.0.0.1, any
  port, any path".

A requested endpoint is a URL (``https://api.example.com/v1``), ``host``,
``host:port``, ``host/path`` or ``[v6]:port``. Hosts are lower-cased and a
trailing dot dropped; IP literals are canonicalised, including the forms an
OS resolver accepts (``127.1``, ``0x7f.0.0.1``, ``2130706433`` are all
127.0.0.1) and IPv4-mapped IPv6, so a deny cannot be dodged by spelling. URL
paths are percent-decoded and normalised (``/a/../b`` is ``/b``). Known
schemes give default ports (http 80, https 443, ...).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from engine.policy.globs import GlobError, compile_glob, glob_covers, is_literal

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
NET = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "ws": 80,
    "wss": 443,
    "ftp": 21,
    "ssh": 22,
    "postgres": 5432,
    "postgresql": 5432,
    "mysql": 3306,
    "redis": 6379,
    "amqp": 5672,
}

_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.\-]*")
_CIDR4_RE = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3})/(\d{1,2})(?=$|[:/])")
_HOST_CHARS_RE = re.compile(r"[a-z0-9*?.\-_\[\]!\\]+")
_NUMERIC_HOST_RE = re.compile(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A requested endpoint. ``path`` has no leading slash ('' = root)."""

    scheme: str | None
    host: str
    ip: IP | None
    port: int | None
    path: str

    def describe(self) -> str:
        host = f"[{self.host}]" if self.ip is not None and self.ip.version == 6 else self.host
        text = f"{self.scheme}://" if self.scheme else ""
        text += host
        if self.port is not None:
            text += f":{self.port}"
        return text + ("/" + self.path if self.path else "")


_IP_CHARS = frozenset("0123456789abcdefx.:")


def canonical_ip(host: str) -> IP | None:
    """The IP a host literal denotes, resolver-style; None for a host name."""
    if not _IP_CHARS.issuperset(host):
        return None  # letters beyond hex, '-', '_': a name (the cheap, common case)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _NUMERIC_HOST_RE.fullmatch(host):
            return None
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@lru_cache(maxsize=4096)
def _norm_host(host: str) -> tuple[str, IP | None]:
    host = host.strip().lower().rstrip(".")
    ip = canonical_ip(host)
    return (str(ip) if ip is not None else host), ip


@lru_cache(maxsize=4096)
def parse_endpoint(text: str) -> Endpoint:
    """Parse a requested endpoint; raises ValueError saying what is wrong.

    Memoised (the result is immutable): services are called again and again.
    """
    s = text.strip()
    if not s:
        raise ValueError("is empty; give a host, host:port or URL")
    scheme: str | None = None
    if "://" in s:
        scheme, s = s.split("://", 1)
        scheme = scheme.lower()
        if not _SCHEME_RE.fullmatch(scheme):
            raise ValueError(f"has an invalid scheme {scheme!r}")
    port: int | None = None
    path = ""
    ip: IP | None
    if not s.startswith("[") and s.count(":") >= 2:
        head, _, rest = s.partition("/")
        try:
            ip = ipaddress.ip_address(head)
        except ValueError:
            raise ValueError("is not a valid address; write IPv6 as [addr]:port") from None
        host_text, path = head, "/" + rest if rest else ""
    else:
        try:
            parts = urlsplit("//" + s)
            host_text = parts.hostname or ""
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"is not a valid endpoint ({exc})") from None
        path = parts.path
    if not host_text:
        raise ValueError("has no host")
    host, ip = _norm_host(host_text)
    if port is None and scheme is not None:
        port = DEFAULT_PORTS.get(scheme)
    if path:
        if "%" in path or "." in path or "//" in path:
            path = posixpath.normpath("/" + unquote(path)).lstrip("/")
            if path == ".":
                path = ""
        else:
            path = path.strip("/")
    return Endpoint(scheme, host, ip, port, path)


def _subnet_of(inner: NET, outer: NET) -> bool:
    """``inner.subnet_of(outer)``, narrowed per IP version (False across versions)."""
    if isinstance(inner, ipaddress.IPv4Network):
        return isinstance(outer, ipaddress.IPv4Network) and inner.subnet_of(outer)
    return isinstance(outer, ipaddress.IPv6Network) and inner.subnet_of(outer)


@dataclass(frozen=True, slots=True)
class EndpointPattern:
    """A compiled endpoint pattern (see the module docstring)."""

    text: str
    scheme: str | None
    host: str | None  # glob text, lower-case; None = any host
    network: NET | None
    port: tuple[int, int] | None
    path: str | None  # glob text relative to the root; None = any path
    host_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    path_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def literal_host(self) -> str | None:
        """The exact host this pattern needs, if it needs one (for indexing)."""
        if self.network is not None:
            if self.network.num_addresses == 1:
                return str(self.network.network_address)
            return None
        if self.host is not None and is_literal(self.host):
            return self.host
        return None

    def matches(self, ep: Endpoint) -> bool:
        if self.scheme is not None and self.scheme != ep.scheme:
            return False
        if self.network is not None:
            ip = ep.ip
            if ip is None or ip.version != self.network.version or ip not in self.network:
                return False
        elif self.host_re is not None and self.host_re.fullmatch(ep.host) is None:
            return False
        if self.port is not None and (ep.port is None or not self.port[0] <= ep.port <= self.port[1]):
            return False
        return self.path_re is None or self.path_re.fullmatch(ep.path) is not None

    def covers(self, other: EndpointPattern) -> bool:
        """True if every endpoint ``other`` matches, this one matches too."""
        if self.scheme is not None and self.scheme != other.scheme:
            return False
        if self.network is not None:
            if other.network is None or other.network.version != self.network.version:
                return False
            if not _subnet_of(other.network, self.network):
                return False
        elif self.host is not None:
            if other.network is not None:
                return False
            if other.host is None or not glob_covers(self.host, other.host, "."):
                return False
        if self.port is not None:
            if other.port is None or not (self.port[0] <= other.port[0] and other.port[1] <= self.port[1]):
                return False
        if self.path is not None and self.path != "**":
            if other.path is None or not glob_covers(self.path, other.path, "/"):
                return False
        return True


def _parse_port(token: str, offset: int) -> tuple[int, int] | None:
    if token == "*":
        return None
    m = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", token)
    if not m:
        raise GlobError(f"bad port {token!r}: use a number, a range like 8000-8999, or *", offset)
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if hi > 65535 or lo > hi:
        raise GlobError(f"bad port {token!r}: ports are 0-65535, low-high", offset)
    return (lo, hi)


def compile_endpoint(text: str) -> EndpointPattern:
    """Compile an endpoint pattern; raises GlobError (offset into ``text``)."""
    raw = text
    s = text.strip()
    base = len(text) - len(text.lstrip())
    if not s:
        raise GlobError("empty endpoint pattern", 0)
    if "\x00" in s:
        raise GlobError("NUL character in pattern", base + s.index("\x00"))
    scheme: str | None = None
    if "://" in s:
        scheme, s = s.split("://", 1)
        scheme = scheme.lower()
        base += len(scheme) + 3
        if scheme == "*":
            scheme = None
        elif not _SCHEME_RE.fullmatch(scheme):
            raise GlobError(f"bad scheme {scheme!r}", 0)
    host: str | None = None
    network: NET | None = None
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise GlobError("unclosed '[' in IPv6 address", base)
        inner = s[1:end]
        try:
            network = ipaddress.ip_network(inner, strict=False)
        except ValueError:
            raise GlobError(f"bad IPv6 address or CIDR {inner!r}", base + 1) from None
        s, base = s[end + 1 :], base + end + 1
    else:
        m = _CIDR4_RE.match(s)
        if m:
            try:
                network = ipaddress.ip_network(f"{m.group(1)}/{m.group(2)}", strict=False)
            except ValueError:
                raise GlobError(f"bad CIDR {m.group(0)!r}", base) from None
            s, base = s[m.end() :], base + m.end()
        elif s.count(":") >= 2:
            try:
                network = ipaddress.ip_network(s, strict=False)
            except ValueError:
                raise GlobError(
                    f"bad IPv6 address {s!r}; write [addr]:port when a port or path follows", base
                ) from None
            s = ""
        else:
            m = re.match(r"[^:/]*", s)
            assert m is not None
            host_text = m.group(0).lower().rstrip(".")
            if not host_text:
                raise GlobError("missing host (use * for any host)", base)
            ip = canonical_ip(host_text)
            if ip is not None:
                network = ipaddress.ip_network(ip)
            else:
                if not _HOST_CHARS_RE.fullmatch(host_text):
                    bad = next(i for i, c in enumerate(host_text) if not _HOST_CHARS_RE.fullmatch(c))
                    raise GlobError(f"invalid character {host_text[bad]!r} in host", base + bad)
                try:
                    compile_glob(host_text, ".")
                except GlobError as exc:
                    raise GlobError(str(exc), base + exc.offset) from None
                host = None if host_text in ("*", "**") else host_text
            s, base = s[m.end() :], base + m.end()
    port: tuple[int, int] | None = None
    if s.startswith(":"):
        token = s[1:].split("/", 1)[0]
        port = _parse_port(token, base + 1)
        s, base = s[1 + len(token) :], base + 1 + len(token)
    path: str | None = None
    if s.startswith("/"):
        path = s[1:]
        try:
            compile_glob(path, "/")
        except GlobError as exc:
            raise GlobError(str(exc), base + 1 + exc.offset) from None
    elif s:
        raise GlobError(f"unexpected {s!r} after the host; expected :port or /path", base)
    return EndpointPattern(
        raw,
        scheme,
        host,
        network,
        port,
        path,
        host_re=None if host is None else compile_glob(host, "."),
        path_re=None if path is None else compile_glob(path, "/"),
    )
