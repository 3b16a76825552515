"""The client address behind proxies: X-Forwarded-For is believed only from trusted proxies.

Requests come "through a fake proxy": the socket peer (REMOTE_ADDR) is the proxy's address, and
X-Forwarded-For is what a client sent followed by what the proxy appended, as nginx's
`$proxy_add_x_forwarded_for` builds it.
"""

from __future__ import annotations

import logging

import pytest
from django.test import RequestFactory

from accounts.models import DeviceSession
from core.client_address import address_key, client_ip, client_key
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
PROXY = "172.18.0.2"


def forwarded(client_address: str, sent_by_client: str = "") -> str:
    """The X-Forwarded-For a proxy passes on: the client's own header, then the client's address."""
    return f"{sent_by_client}, {client_address}" if sent_by_client else client_address


def through_proxy(client_address: str, *, sent_by_client: str = "", proxy: str = PROXY) -> dict[str, str]:
    return {"REMOTE_ADDR": proxy, "HTTP_X_FORWARDED_FOR": forwarded(client_address, sent_by_client)}


def address_of(**meta) -> str | None:
    return client_ip(RequestFactory().get("/", **meta))


@pytest.fixture
def behind_proxy_network(settings):
    settings.TRUSTED_PROXY_NETWORKS = ["172.18.0.0/16"]
    settings.TRUSTED_PROXY_COUNT = 0


def test_without_trusted_proxies_the_socket_peer_is_the_client(settings):
    assert (settings.TRUSTED_PROXY_COUNT, settings.TRUSTED_PROXY_NETWORKS) == (0, [])
    assert address_of(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="1.2.3.4") == "203.0.113.9"


def test_a_trusted_proxy_network_gives_each_forwarded_client_its_own_address(behind_proxy_network):
    assert address_of(**through_proxy("198.51.100.7")) == "198.51.100.7"
    assert address_of(**through_proxy("198.51.100.8")) == "198.51.100.8"
    # Two proxies in the network (a load balancer in front of nginx): both hops are skipped.
    assert address_of(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.7, 172.18.0.9") == "198.51.100.7"


def test_an_entry_the_client_wrote_itself_is_never_reached(behind_proxy_network):
    meta = through_proxy("198.51.100.7", sent_by_client="6.6.6.6, 172.18.0.5")
    assert address_of(**meta) == "198.51.100.7"


def test_a_forged_header_from_an_untrusted_peer_changes_nothing(behind_proxy_network):
    assert address_of(REMOTE_ADDR="203.0.113.50", HTTP_X_FORWARDED_FOR="1.2.3.4") == "203.0.113.50"
    assert address_of(REMOTE_ADDR="203.0.113.50", HTTP_X_FORWARDED_FOR="1.2.3.4, 172.18.0.2") == "203.0.113.50"


def test_a_hop_count_trusts_exactly_that_many_proxies(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert address_of(REMOTE_ADDR="10.9.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7") == "198.51.100.7"
    settings.TRUSTED_PROXY_COUNT = 2
    assert address_of(REMOTE_ADDR="10.9.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7, 10.9.0.2") == (
        "198.51.100.7"
    )
    # A request that reached the app without the header (a health probe) is the peer.
    assert address_of(REMOTE_ADDR="10.9.0.1") == "10.9.0.1"


def test_count_and_networks_together_need_both(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_NETWORKS = ["172.18.0.0/16"]
    assert address_of(**through_proxy("198.51.100.7", sent_by_client="6.6.6.6")) == "198.51.100.7"
    assert address_of(REMOTE_ADDR="203.0.113.50", HTTP_X_FORWARDED_FOR="1.2.3.4") == "203.0.113.50"


def test_ports_brackets_mapped_and_garbage_entries(behind_proxy_network):
    assert address_of(**through_proxy("198.51.100.7:51234")) == "198.51.100.7"
    assert address_of(**through_proxy("[2001:db8::7]:443")) == "2001:db8::7"
    assert address_of(**through_proxy("::ffff:198.51.100.7")) == "198.51.100.7"
    # Garbage where an address should be: the last address that could be believed (the proxy).
    assert address_of(**through_proxy("unknown")) == PROXY
    assert address_of(REMOTE_ADDR="not-an-address") is None


def test_ipv6_clients_are_counted_by_their_64():
    request = RequestFactory().get("/", REMOTE_ADDR="2001:db8:1:2:aaaa::1")
    assert client_key(request) == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("198.51.100.7") == "198.51.100.7"


def test_distinct_clients_behind_the_proxy_have_their_own_rate_limits(api, make_user, real_rate_limits, settings):
    """The measured failure: 25 users refreshing through one proxy, 20 got 200 and then 429."""
    settings.TRUSTED_PROXY_NETWORKS = ["172.18.0.0/16"]
    settings.RATE_LIMITS = {**real_rate_limits, "refresh": {"rate": (3, 60), "burst": None}}
    tokens = []
    for n in range(25):
        user = make_user()
        response = api.post(
            "/api/auth/login",
            {"email": user.email, "password": PASSWORD},
            format="json",
            **through_proxy(f"10.7.0.{n}"),
        )
        assert response.status_code == 200, response.content
        tokens.append(response.json()["data"]["refreshToken"])
    statuses = [
        api.post(
            "/api/auth/refresh", {"refreshToken": token}, format="json", **through_proxy(f"10.7.0.{n}")
        ).status_code
        for n, token in enumerate(tokens)
    ]
    assert statuses == [200] * 25
    # One client forging a different address on every request is still one client.
    forged = [
        api.post(
            "/api/auth/refresh",
            {"refreshToken": "x"},
            format="json",
            REMOTE_ADDR="203.0.113.50",
            HTTP_X_FORWARDED_FOR=f"10.8.0.{n}",
        ).status_code
        for n in range(4)
    ]
    assert forged == [401, 401, 401, 429]


def test_device_sessions_and_request_logs_record_the_forwarded_address(api, user, behind_proxy_network, caplog):
    with caplog.at_level(logging.INFO, logger="http.request"):
        response = api.post(
            "/api/auth/login",
            {"email": user.email, "password": PASSWORD},
            format="json",
            **through_proxy("198.51.100.7", sent_by_client="6.6.6.6"),
        )
    assert response.status_code == 200
    assert DeviceSession.objects.get(id=response.json()["data"]["sessionId"]).ip_address == "198.51.100.7"
    line = next(record for record in caplog.records if record.name == "http.request")
    assert line.client_ip == "198.51.100.7"
    assert line.getMessage().endswith("ip=198.51.100.7")
