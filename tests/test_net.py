"""The one loopback rule: plain http, plain IMAP and an SMTP listener for this machine only."""

from __future__ import annotations

import ipaddress

import pytest

from gmid.net import is_loopback, is_loopback_network


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "0:0:0:0:0:0:0:1", "localhost", "LocalHost"],
)
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "0.0.0.0",
        "::",
        "128.0.0.1",
        "192.168.1.5",
        "::ffff:127.0.0.1",  # loopback or not depends on the Python version: not, here
        "localhost.",  # a name for the resolver, which may answer anything
        "localhost.example.com",
        "127.0.0.1.example.com",
        "127.1",  # the resolver reads it as 127.0.0.1; we read no shorthand
        "[127.0.0.1]",
        "[::1",
    ],
)
def test_not_loopback(host):
    assert not is_loopback(host)


def test_loopback_networks():
    assert is_loopback_network(ipaddress.ip_network("127.0.0.0/8"))
    assert is_loopback_network(ipaddress.ip_network("127.0.0.3/32"))
    assert is_loopback_network(ipaddress.ip_network("::1/128"))
    assert not is_loopback_network(ipaddress.ip_network("0.0.0.0/0"))
    assert not is_loopback_network(ipaddress.ip_network("::/0"))
    assert not is_loopback_network(ipaddress.ip_network("10.0.0.0/8"))
