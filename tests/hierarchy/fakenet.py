"""A fake Handle network for resolver tests: sites on made-up addresses, each answering from
a dict of records and referrals, with every query logged."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from idnode.codes import ResponseCode
from idnode.model import HS_SITE, NA_PREFIX, HandleValue, handle_key
from idnode.wire import bodies
from idnode.wire.message import Message, make_response
from idnode.wire.site import ServerRecord, SiteInfo, encode_site


def site(n: int) -> SiteInfo:
    return SiteInfo.for_single_server(f"10.0.0.{n}", udp_port=2641, tcp_port=2641, http_port=None)


def site_value(s: SiteInfo, ttl: int = 86400) -> HandleValue:
    return HandleValue(1, HS_SITE, encode_site(s), ttl=ttl)


@dataclass
class FakeNet:
    records: dict[tuple[int, str], list[HandleValue]] = field(default_factory=dict)
    referrals: dict[tuple[int, str], tuple[str, list[HandleValue] | None]] = field(
        default_factory=dict
    )
    log: list[tuple[int, str]] = field(default_factory=list)
    down: set[int] = field(default_factory=set)
    delay: float = 0.0

    def add(self, n: int, handle: str, values: list[HandleValue]) -> None:
        self.records[(n, handle_key(handle))] = values

    def delegate(self, n: int, prefix: str, child: int, ttl: int = 86400) -> None:
        self.add(n, NA_PREFIX + prefix, [site_value(site(child), ttl)])

    def refer(self, n: int, handle: str, service: str, values: list[HandleValue] | None) -> None:
        self.referrals[(n, handle_key(handle))] = (service, values)

    async def transport(self, server: ServerRecord, message: Message, timeout: float) -> Message:
        n = int(str(server.connect_address).rsplit(".", 1)[1])
        handle = message.body.handle  # type: ignore[union-attr]
        self.log.append((n, handle))
        if self.delay:
            await asyncio.sleep(self.delay)
        if n in self.down:
            raise ConnectionRefusedError(f"10.0.0.{n} is down")
        key = (n, handle_key(handle))
        if key in self.referrals:
            service, values = self.referrals[key]
            body = bodies.ServiceReferralResponse(
                service, None if values is None else tuple(values)
            )
            return make_response(message, body, ResponseCode.SERVICE_REFERRAL)
        if key in self.records:
            body = bodies.ResolutionResponse(handle, tuple(self.records[key]))
            return make_response(message, body)
        error = bodies.ErrorResponse("not found")
        return make_response(message, error, ResponseCode.HANDLE_NOT_FOUND)
