"""What counts as this machine's loopback, for every check that lets loopback do more.

Plain http to a portal, plain IMAP and an SMTP listener without allow_remote are allowed on
loopback only. The rule is the same everywhere and decided by the text alone, never by a name
lookup: a name that merely resolves to 127.0.0.1 (by /etc/hosts or DNS) is not loopback.
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def is_loopback(host: str) -> bool:
    """Tell whether a host is this machine: an address in 127.0.0.0/8 or ::1, or "localhost".

    An IPv6 address may come in brackets, as in a URL; "localhost" in any case, but not
    "localhost." or a name under it. An IPv4-mapped address (::ffff:127.0.0.1) is not loopback,
    whatever the Python version says of it.
    """
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        return host.lower() == "localhost"
    if bracketed and address.version != 6:
        return False  # brackets hold IPv6 addresses only
    return any(
        address.version == network.version and address in network for network in LOOPBACK_NETWORKS
    )


def is_loopback_network(network: Network) -> bool:
    """Tell whether every address of a network is this machine's loopback."""
    return any(
        network.version == loopback.version and network.subnet_of(loopback)
        for loopback in LOOPBACK_NETWORKS
    )
