"""REST sessions hold on every worker of ``idnode serve --workers 2``, and end on all of them.

The workers share the HTTP port (SO_REUSEPORT) and the kernel hands each new connection to
either. Sessions used to live in the memory of the worker that opened them, so a client's
next request on a new connection was refused with 401 whenever it landed on the other one
(``bench/writes.py --paths rest-new``: 789 of 1,607 PUTs); a DELETE ended the session on
one worker only. Now they live in the store (``auth/rest_sessions.py``). Every request
below goes on a connection of its own, 200 of them, so both workers serve some (the odds
that one worker gets all 200 are 2^-199).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import httpx
import pytest

from idnode.auth.identity import Identity
from idnode.auth.rest import make_rest_session_authorization
from idnode.bootstrap import ADMIN_KEY_NAME
from idnode.crypto.keys import private_key_from_pem
from idnode.model import NA_PREFIX
from tests.conftest import RunningNode, start_node, stop_node

PREFIX = "20.500.123"
OPERATOR = Identity(NA_PREFIX + PREFIX, 300)
REQUESTS = 200
URL_VALUE = {"values": [{"index": 1, "type": "URL", "data": "https://example.com/s"}]}


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[RunningNode]:
    running = start_node(tmp_path_factory.mktemp("shared"), serve_args=("--workers", "2"))
    try:
        yield running
    finally:
        stop_node(running)


def fresh(node: RunningNode, method: str, path: str, **kwargs) -> httpx.Response:
    """One request on a new connection: the kernel chooses its worker anew."""
    with httpx.Client(base_url=node.http_url, timeout=30) as client:
        return client.request(method, path, **kwargs)


def operator_key(node: RunningNode):
    return private_key_from_pem((node.directory / ADMIN_KEY_NAME).read_bytes())


def test_a_session_is_honoured_by_every_worker_and_deleted_for_all(node) -> None:
    opened = fresh(node, "POST", "/api/sessions")
    assert opened.status_code == 201
    token, nonce = opened.json()["sessionId"], base64.b64decode(opened.json()["nonce"])
    answer = make_rest_session_authorization(token, OPERATOR, nonce, private_key=operator_key(node))
    done = fresh(node, "PUT", "/api/sessions/this", headers={"Authorization": answer})
    assert done.status_code == 200, done.text
    assert done.json()["authenticated"] is True

    session = {"Authorization": f'Handle sessionId="{token}"'}
    outcomes = []
    for i in range(REQUESTS):
        if i % 2:  # who the session is, asked of whichever worker
            resp = fresh(node, "GET", "/api/sessions/this", headers=session)
            ok = resp.status_code == 200 and resp.json().get("id") == str(OPERATOR)
        else:  # an authenticated write
            resp = fresh(node, "PUT", f"/api/handles/{PREFIX}/shared-{i}", json=URL_VALUE,
                         headers=session)  # fmt: skip
            ok = resp.status_code == 201
        outcomes.append(None if ok else resp.status_code)
    refused = [code for code in outcomes if code is not None]
    assert refused == [], f"{len(refused)} of {REQUESTS} refused: {sorted(set(refused))}"

    assert fresh(node, "DELETE", "/api/sessions/this", headers=session).status_code == 204
    after = [
        fresh(node, "GET", f"/api/handles/{PREFIX}/demo-1", headers=session).status_code
        for _ in range(REQUESTS)
    ]
    assert set(after) == {401}, f"{after.count(200)} of {REQUESTS} still honoured it"


def _challenge(response: httpx.Response) -> tuple[str, bytes]:
    header = next(
        c for c in response.headers.get_list("www-authenticate") if c.startswith("Handle")
    )
    found = dict(re.findall(r'(\w+)="([^"]*)"', header))
    return found["sessionId"], base64.b64decode(found["nonce"])


def test_a_refusals_challenge_is_answered_on_any_worker(node) -> None:
    """A 401's challenge (no session until answered) issued by one worker and answered on
    another: its MAC key is the node's, not a worker's, and the session it becomes is in
    the store."""
    key = operator_key(node)
    refused = []
    for i in range(40):
        path = f"/api/handles/{PREFIX}/challenged-{i}"
        anonymous = fresh(node, "PUT", path, json=URL_VALUE)
        assert anonymous.status_code == 401
        token, nonce = _challenge(anonymous)
        answer = make_rest_session_authorization(token, OPERATOR, nonce, private_key=key)
        made = fresh(node, "PUT", path, json=URL_VALUE, headers={"Authorization": answer})
        again = fresh(node, "GET", "/api/sessions/this",
                      headers={"Authorization": f'Handle sessionId="{token}"'})  # fmt: skip
        if made.status_code != 201 or again.json().get("id") != str(OPERATOR):
            refused.append((made.status_code, again.status_code))
    assert refused == [], f"{len(refused)} of 40 challenges failed across workers: {refused}"
