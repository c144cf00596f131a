"""host:port strings and whether a host is this machine: for ``http.listen`` (no credentials only on loopback) and
the page's Host check (DNS rebinding). Parsed, never prefix-matched: ``localhost.example.com`` and ``127.0.0.1.nip.io``
are other machines."""

from __future__ import annotations

import ipaddress


def host_of(value: str) -> str:
    """The host of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``, lower-cased, without a trailing dot."""
    value = value.strip()
    if value.startswith("["):
        host = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        host = value.partition(":")[0]
    else:
        host = value  # a bare name, or a bare IPv6 address
    return host.lower().rstrip(".")


def is_loopback_host(host: str) -> bool:
    """``localhost`` exactly, or an address in 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(listen: str) -> bool:
    """``http.listen`` (``host:port``) serves this machine only."""
    return is_loopback_host(host_of(listen.rpartition(":")[0]))
