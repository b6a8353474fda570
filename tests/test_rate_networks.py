"""Login rate limits count networks, not single addresses: a host holding a whole IPv6 /64
(every home and cloud host gets one) is one client, as one IPv4 address is."""

import pytest

from server.ratelimit import client_block
from tests.conftest import make_config
from tests.test_security import logins, serve

PROXY = {"trusted_proxies": ["127.0.0.1/32", "::1"]}  # the test client is the trusted proxy


def from_address(address: str) -> dict:
    return {"X-Forwarded-For": address}


async def passed(http_client, base, addresses, openid) -> int:
    """How many logins pass, one from each address, all within the same instant."""
    count = 0
    for address in addresses:
        answers = await logins(http_client, base, 1, from_address(address), openid=openid)
        count += answers[0].code == 200
    return count


@pytest.mark.gen_test(timeout=60)
async def test_one_ipv6_64_is_one_client_and_cannot_spend_the_overall_limit(clock, http_client):
    # rate_overall = 100: what a /64 counted address by address would use up alone.
    config = make_config(login={"rate_per_address": 30, "rate_overall": 100}, server=PROXY)
    instance, http, base = await serve(config, clock)
    try:
        one_64 = [f"2001:db8:1:2:{i:x}::{i + 1:x}" for i in range(100)]
        assert await passed(http_client, base, one_64, "six") == 30  # of 100, within a minute
        other_64 = [f"2001:db8:1:3::{i + 1:x}" for i in range(40)]
        assert await passed(http_client, base, other_64, "sev") == 30  # unaffected
        # A minute later the first /64 has its allowance again.
        clock.advance(60)
        assert await passed(http_client, base, one_64[:40], "six") == 30
    finally:
        http.stop()
        await instance.stop()


@pytest.mark.gen_test(timeout=60)
async def test_prefix_lengths_are_configurable_and_mapped_ipv4_counts_as_ipv4(clock, http_client):
    config = make_config(login={"rate_per_address": 5, "rate_overall": 0,
                                "rate_ipv4_prefix": 24, "rate_ipv6_prefix": 48}, server=PROXY)
    instance, http, base = await serve(config, clock)
    try:
        # One /24, half of it written as IPv4-mapped IPv6: one client.
        one_24 = [f"198.51.100.{i}" if i % 2 else f"::ffff:198.51.100.{i}" for i in range(20)]
        assert await passed(http_client, base, one_24, "v4") == 5
        assert await passed(http_client, base, ["198.51.101.1"] * 10, "v4b") == 5
        # One /48 spread over many /64s: one client; the next /48 is another.
        one_48 = [f"2001:db8:7:{i:x}::1" for i in range(20)]
        assert await passed(http_client, base, one_48, "v6") == 5
        assert await passed(http_client, base, ["2001:db8:8::1"] * 10, "v6b") == 5
    finally:
        http.stop()
        await instance.stop()


@pytest.mark.parametrize("address, block", [
    ("203.0.113.9", "203.0.113.9/32"),
    ("::ffff:203.0.113.9", "203.0.113.9/32"),          # IPv4-mapped: the IPv4 address
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),                       # scoped link-local
    ("::1", "::/64"),
    ("not-an-address", "not-an-address"),                # a Unix socket peer: as it is
])
def test_the_block_an_address_is_counted_in(address, block):
    assert client_block(address, 32, 64) == block


def test_prefix_length_keys_default_and_are_checked():
    from server.config import ConfigError

    login = make_config().login
    assert (login.rate_ipv4_prefix, login.rate_ipv6_prefix) == (32, 64)
    for key, value, problem in [
        ("rate_ipv4_prefix", 33, "must be between 0 and 32, got 33"),
        ("rate_ipv6_prefix", 129, "must be between 0 and 128, got 129"),
        ("rate_ipv6_prefix", "64", "expected a prefix length (a whole number), got string '64'"),
    ]:
        with pytest.raises(ConfigError) as info:
            make_config(login={key: value})
        assert f"login.{key}: {problem}" in str(info.value)
