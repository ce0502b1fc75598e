"""Per-IP limits count an IPv6 client by its network, an IPv4-mapped one as IPv4."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from backend.middleware import client_ip, rate_limit_address


@pytest.mark.parametrize(
    ("ip", "counted_as"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:abcd:1:2", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("203.0.113.7", "203.0.113.7"),
        ("0.0.0.0", "0.0.0.0"),  # noqa: S104  # the placeholder of a missing address
        ("not-an-address", "not-an-address"),
    ],
)
def test_what_a_client_address_is_counted_as(ip: str, counted_as: str) -> None:
    assert rate_limit_address(ip) == counted_as


def test_the_ipv6_prefix_is_a_setting(settings) -> None:
    settings.RATE_LIMIT_IPV6_PREFIX = 48
    assert rate_limit_address("2001:db8:1:2::1") == "2001:db8:1::/48"
    settings.RATE_LIMIT_IPV6_PREFIX = 128
    assert rate_limit_address("2001:db8:1:2::1") == "2001:db8:1:2::1/128"


def test_client_ip_is_the_full_address(settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    request = RequestFactory().get("/", REMOTE_ADDR="2001:db8:1:2::7")
    assert client_ip(request) == "2001:db8:1:2::7"
