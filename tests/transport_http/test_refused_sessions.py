"""Refused requests open no session, and a full session table stays cheap (issue 15, item 6).

Every anonymous 401 used to open a REST session to name in its challenge, and once the table
held 10,000 each new session scanned all of them (requests fell from 3,010 to 442 a second).
Now the challenge names a session made only when someone answers it, and a full table
drops its least recently used expired sessions from the front instead of scanning.
Against the code before the change, the 300 refusals below left 300 sessions behind and
filling the table cost a scan of every session per new one.
"""

from __future__ import annotations

import base64
import re

import httpx

from idnode.auth.identity import Identity
from idnode.auth.rest import make_rest_session_authorization
from idnode.auth.sessions import SessionTable
from idnode.runtime import ManualClock, SeededRandom
from idnode.transport.http import build_app
from tests.transport_http.support import PREFIX, SECRET, admin_identity, basic

H = f"{PREFIX}/item-1"
OPERATOR = Identity(f"0.NA/{PREFIX}", 300)
RECORD = {"values": [{"index": 1, "type": "URL", "data": "https://example.com/a"}]}
PRIVATE = {"index": 2, "type": "EMAIL", "data": "a@example.com", "permissions": "1110"}


def _challenge(response: httpx.Response) -> tuple[str, bytes]:
    handle = next(
        c for c in response.headers.get_list("www-authenticate") if c.startswith("Handle")
    )
    found = dict(re.findall(r'(\w+)="([^"]*)"', handle))
    return found["sessionId"], base64.b64decode(found["nonce"])


async def test_refusals_open_no_session_and_their_challenge_still_answers(rest) -> None:
    private = {"values": [{**PRIVATE, "permissions": "1100"}]}
    made = await rest.client.put(
        f"/api/handles/{PREFIX}/private", json=private, headers=basic(admin_identity(), SECRET)
    )
    assert made.status_code == 201, made.text
    app = build_app(rest.node)
    sessions = app.state.auth.sessions
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        for _ in range(300):  # anonymous reads of a restricted value: 401 and a challenge
            refused = await client.get(f"/api/handles/{PREFIX}/private?publicOnly=false")
            assert refused.status_code == 401
        assert await sessions.count() == 0
        session_id, nonce = _challenge(refused)
        header = make_rest_session_authorization(
            session_id, OPERATOR, nonce, private_key=rest.operator_key
        )
        created = await client.put(
            f"/api/handles/{H}", json=RECORD, headers={"Authorization": header}
        )
        assert created.status_code == 201, created.text
        assert await sessions.count() == 1
        again = {"Authorization": f'Handle sessionId="{session_id}"'}  # the id alone now
        assert (await client.delete(f"/api/handles/{H}", headers=again)).status_code == 200
        replay = await client.put(
            f"/api/handles/{H}", json=RECORD, headers={"Authorization": header}
        )
        assert replay.status_code == 201  # same identity on its session: HSJ's "seen before"
        forged = session_id[:-2] + ("AA" if session_id[-2:] != "AA" else "BB")
        bad = {"Authorization": header.replace(session_id, forged)}
        assert (await client.put(f"/api/handles/{H}", json=RECORD, headers=bad)).status_code == 401
        assert await sessions.count() == 1


def test_a_full_table_makes_room_without_scanning_every_session(monkeypatch) -> None:
    clock = ManualClock()
    table = SessionTable(clock, SeededRandom(1), timeout=60, max_sessions=2000)
    for _ in range(2000):
        table.open_rest()
    clock.advance(120)  # every one of them idle past its timeout
    looked_at = 0
    expired = SessionTable._expired

    def counting(self, session, now):
        nonlocal looked_at
        looked_at += 1
        return expired(self, session, now)

    monkeypatch.setattr(SessionTable, "_expired", counting)
    for _ in range(2000):
        table.open_rest()
    assert len(table) <= 2000
    assert looked_at < 3 * 2000, f"{looked_at} sessions examined for 2000 new ones"
