"""Fair budgets (issue 15, item 4): what UDP spends never blocks a TCP, TLS or HTTP client,
and failed proofs are counted per identity and per verified address.

A UDP source address is only claimed: anyone can send session setups "from" a victim's
address. Against the code before the change, one per-address budget was shared by every
transport, so 12 spoofed UDP session setups made the victim's HTTP login answer 429.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from idnode.codes import OpCode, ResponseCode
from idnode.config import LimitsSection
from idnode.transport.limits import Limits
from idnode.wire import bodies
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope
from idnode.wire.header import Header, decode_header
from idnode.wire.message import Message, encode_message
from tests.conftest import RunningNode
from tests.transport.served import PREFIX, seeded_node_dir
from tests.transport.served import serve as serve_node
from tests.transport.served import stop as stop_node
from tests.transport_http.support import basic

LIMITS = {
    "IDNODE_LIMITS_EXEMPT": "",
    "IDNODE_LIMITS_AUTH_RATE_PER_MINUTE": "6",
    "IDNODE_LIMITS_AUTH_BURST": "3",
    "IDNODE_LIMITS_AUTH_IDENTITY_RATE_PER_MINUTE": "1",
    "IDNODE_LIMITS_AUTH_IDENTITY_BURST": "5",
}


class FakeClock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[RunningNode]:
    directory = seeded_node_dir(tmp_path_factory.mktemp("budgets") / "node")
    running = serve_node(directory, LIMITS)
    yield running
    stop_node(running)


def _session_setup(request_id: int) -> bytes:
    return encode_message(
        Message(
            Header(OpCode.SESSION_SETUP),
            bodies.SessionSetupRequest(0, 60, f"0.NA/{PREFIX}", 300, b""),
            Envelope(request_id=request_id),
        )
    )


def _http(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)


def test_spoofed_udp_setups_do_not_lock_the_victim_out_of_http(node) -> None:
    victim = "127.0.0.101"
    spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoofer.bind((victim, 0))  # what a spoofed packet looks like to the server
    spoofer.settimeout(10)
    try:
        codes = []
        for n in range(12):
            spoofer.sendto(_session_setup(n + 1), (node.host, node.port))
            codes.append(decode_header(spoofer.recv(65536)[ENVELOPE_SIZE:]).response_code)
        assert ResponseCode.SERVER_BUSY in codes  # the UDP budget of that address is spent
    finally:
        spoofer.close()
    with _http(victim) as client:
        assert client.post(f"{node.http_url}/api/sessions").status_code == 201


def test_failed_proofs_are_charged_to_the_identity_from_any_address(node) -> None:
    wrong = basic(f"300:0.NA/{PREFIX}", "not the secret")
    url = f"{node.http_url}/api/handles/{PREFIX}/small"
    statuses = []
    for n in range(4):  # two failures from each of four addresses: 8 > the identity's 5
        with _http(f"127.0.0.{110 + n}") as client:
            statuses += [client.get(url, headers=wrong).status_code for _ in range(2)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    with _http("127.0.0.120") as fresh:  # a new address: the identity is still spent
        assert fresh.get(url, headers=wrong).status_code == 429
        other = basic(f"300:{PREFIX}/someone-else", "guess")  # another identity is not
        assert fresh.get(url, headers=other).status_code == 401
        assert fresh.get(url).status_code == 200  # nor is anonymous resolution


def test_udp_failures_never_spend_what_verified_transports_draw_on() -> None:
    clock = FakeClock()
    section = replace(LimitsSection(), exempt=[], auth_burst=3, auth_identity_burst=5)
    limits = Limits.from_settings(section, clock)
    for _ in range(50):  # a spoofed flood of failed proofs for one identity and address
        limits.auth_failed("10.0.0.1", "300:0.NA/X", udp=True)
        limits.allow_auth_attempt("10.0.0.1", udp=True)
        limits.allow_request("10.0.0.1", udp=True)
    assert not limits.may_try_auth("10.0.0.1", "300:0.NA/X", udp=True)
    assert limits.may_try_auth("10.0.0.1", "300:0.NA/X")  # over TCP/HTTP: untouched
    assert limits.allow_auth_attempt("10.0.0.1") and limits.allow_request("10.0.0.1")
    for n in range(5):  # verified failures from five addresses spend the identity
        limits.auth_failed(f"10.0.1.{n}", "300:0.NA/X")
    assert not limits.may_try_auth("10.0.2.1", "300:0.NA/X")
    assert limits.may_try_auth("10.0.2.1", "300:0.NA/Y") and limits.may_try_auth("10.0.2.1")
    clock.now += 60.0  # six a minute come back
    assert limits.may_try_auth("10.0.2.1", "300:0.NA/X")


def _application(i: int) -> dict:
    from idnode.registry.creditcode import check_character

    first17 = f"91350100M{i:08d}"
    return {
        "legal_name": f"Flood {i} Co., Ltd.",
        "credit_code": first17 + check_character(first17),
        "contact": {"name": "A", "phone": "+86 591 1", "email": "a@example.cn"},
    }


def test_anonymous_applications_from_one_address_are_limited(node) -> None:
    """Item 6: 1,500 organisation applications from one address in 2.2 s all went in; now
    a burst of ``anonymous_write_burst`` is accepted and the rest answer 429 (JSON)."""
    url = f"{node.http_url}/api/mgmt/organisations"
    with _http("127.0.0.130") as client:
        answers = [client.post(url, json=_application(i)) for i in range(60)]
    created = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code == 429]
    assert 1 <= len(created) <= 10 and len(created) + len(refused) == 60, [
        a.status_code for a in answers
    ]
    assert "message" in refused[0].json() and float(refused[0].headers["retry-after"]) > 0
    with _http("127.0.0.131") as other:  # another address is not held back
        assert other.post(url, json=_application(1000)).status_code == 201


def test_a_trickle_of_applications_stops_at_the_daily_cap() -> None:
    clock = FakeClock()
    limits = Limits.from_settings(replace(LimitsSection(), exempt=[]), clock)
    accepted = 0
    for _ in range(24 * 60):  # one a minute for a day: under the per-minute rate
        accepted += limits.allow_anonymous_write("192.0.2.1")
        clock.now += 60
    assert accepted <= 2 * LimitsSection().anonymous_write_per_day
