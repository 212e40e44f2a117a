"""pyhandle (PyPI, its REST client) against a real ``idnode serve``, used as its users use it.

The issue's "done when": an administrator creates a prefix admin with a secret key, then
pyhandle creates, reads, modifies and deletes handles under that prefix with Basic
authentication. The administrator here is the node operator, authenticating over the REST
sessions API with the public key ``idnode init`` made -- so that path is exercised end to end
as well. pyhandle comes from the ``test`` extra (pyproject.toml); nothing is installed here.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from idnode.auth.identity import Identity
from idnode.auth.rest import make_rest_session_authorization
from idnode.bootstrap import ADMIN_KEY_NAME
from idnode.crypto.keys import private_key_from_pem
from idnode.model import HS_SECKEY, NA_PREFIX
from idnode.wire.json import value_to_json
from tests.conftest import RunningNode, start_node, stop_node
from tests.transport_http.support import (
    SECRET,
    admin_identity,
    basic,
    key_handle_values,
    prefix_admin_values,
)

pyhandle = pytest.importorskip("pyhandle", reason="pyhandle comes with the test extra")
from pyhandle.handleclient import PyHandleClient, RESTHandleClient  # noqa: E402
from pyhandle.handleexceptions import (  # noqa: E402
    HandleAlreadyExistsException,
    HandleAuthenticationError,
    HandleNotFoundException,
)

PREFIX = "20.500.88"  # numeric: pyhandle lstrip('hdl:')s characters, not a prefix


def _operator_session(node: RunningNode, client: httpx.Client) -> dict[str, str]:
    """POST /api/sessions, answer the nonce with the operator's RSA key, return the header."""
    key = private_key_from_pem((node.directory / ADMIN_KEY_NAME).read_bytes())
    opened = client.post("/api/sessions").json()
    header = make_rest_session_authorization(
        opened["sessionId"],
        Identity(NA_PREFIX + PREFIX, 300),
        base64.b64decode(opened["nonce"]),
        private_key=key,
    )
    done = client.put("/api/sessions/this", headers={"Authorization": header})
    assert done.status_code == 200 and done.json()["authenticated"] is True
    return {"Authorization": f'Handle sessionId="{opened["sessionId"]}"'}


def _provision_prefix_admin(node: RunningNode) -> None:
    """The operator gives the prefix an admin group (200:0.NA/P) and a secret-key admin."""
    with httpx.Client(base_url=node.http_url, timeout=10) as client:
        session = _operator_session(node, client)
        group = [value_to_json(v) for v in prefix_admin_values(PREFIX)]
        resp = client.put(
            f"/api/handles/0.NA/{PREFIX}",
            json={"values": group},
            params=[("index", 101), ("index", 200)],
            headers=session,
        )
        assert resp.status_code == 201, resp.text
        key_record = [value_to_json(v) for v in key_handle_values(PREFIX, SECRET)]
        resp = client.put(
            f"/api/handles/{PREFIX}/ADMIN",
            json={"values": key_record},
            params={"overwrite": "false"},
            headers=session,
        )
        assert resp.status_code == 201, resp.text
        stored = client.get(
            f"/api/handles/{PREFIX}/ADMIN", params={"index": 300}, headers=session
        ).json()["values"][0]
        assert stored["type"] == HS_SECKEY and stored["permissions"] == "1100"
        assert SECRET not in str(stored)  # kept hashed: the store never holds the secret
        assert client.delete("/api/sessions/this", headers=session).status_code == 204


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[RunningNode]:
    running = start_node(tmp_path_factory.mktemp("pyhandle"), prefix=PREFIX, demo=False)
    try:
        _provision_prefix_admin(running)
        yield running
    finally:
        stop_node(running)


@pytest.fixture(scope="module")
def client(node) -> RESTHandleClient:
    return RESTHandleClient.instantiate_with_username_and_password(
        node.http_url, str(admin_identity(PREFIX)), SECRET
    )


def test_register_read_modify_delete(client):
    handle = f"{PREFIX}/pyh-1"
    assert client.register_handle(handle, "https://example.com/1", checksum="c0ffee") == handle
    record = client.retrieve_handle_record(handle)
    assert record["URL"] == "https://example.com/1" and record["CHECKSUM"] == "c0ffee"
    assert "200" in record["HS_ADMIN"] and f"0.NA/{PREFIX}" in record["HS_ADMIN"]

    client.modify_handle_value(handle, URL="https://example.com/2", EMAIL="ops@example.com")
    assert client.get_value_from_handle(handle, "URL") == "https://example.com/2"
    assert client.get_value_from_handle(handle, "EMAIL") == "ops@example.com"
    indexes = [v["index"] for v in client.retrieve_handle_record_json(handle)["values"]]
    assert indexes == sorted(indexes) and indexes[0] == 1

    assert client.delete_handle_value(handle, "CHECKSUM") == handle
    assert "CHECKSUM" not in client.retrieve_handle_record(handle)

    assert client.delete_handle(handle) == handle
    assert client.retrieve_handle_record(handle) is None
    with pytest.raises(HandleNotFoundException):
        client.delete_handle(handle)


def test_existing_handle_without_overwrite(client):
    handle = f"{PREFIX}/pyh-2"
    client.register_handle(handle, "https://example.com/a")
    with pytest.raises(HandleAlreadyExistsException):
        client.register_handle(handle, "https://example.com/b", overwrite=False)
    assert client.register_handle(handle, "https://example.com/c", overwrite=True) == handle
    assert client.get_value_from_handle(handle, "URL") == "https://example.com/c"


def test_generate_and_register_through_the_main_client(node):
    main = PyHandleClient("rest").instantiate_with_username_and_password(
        node.http_url, str(admin_identity(PREFIX)), SECRET
    )
    handle = main.generate_and_register_handle(PREFIX, "https://example.com/minted")
    assert handle.startswith(f"{PREFIX}/")
    assert main.retrieve_handle_record(handle)["URL"] == "https://example.com/minted"


def test_wrong_password_raises_its_authentication_error(node):
    wrong = RESTHandleClient.instantiate_with_username_and_password(
        node.http_url, str(admin_identity(PREFIX)), "not-the-secret"
    )
    with pytest.raises(HandleAuthenticationError):
        wrong.register_handle(f"{PREFIX}/pyh-bad", "https://example.com/x")
    assert wrong.retrieve_handle_record(f"{PREFIX}/pyh-bad") is None


def test_server_minted_suffix_and_listing_over_rest(node, client):
    auth = basic(admin_identity(PREFIX), SECRET)
    with httpx.Client(base_url=node.http_url, timeout=10) as http:
        minted = http.put(
            f"/api/handles/{PREFIX}/",
            params={"mintNewSuffix": "true"},
            json=[{"index": 1, "type": "URL", "data": "https://example.com/m"}],
            headers=auth,
        )
        assert minted.status_code == 201
        name = minted.json()["handle"]
        assert client.get_value_from_handle(name, "URL") == "https://example.com/m"
        listing = http.get("/api/handles", params={"prefix": PREFIX}, headers=auth).json()
    assert listing["responseCode"] == 1 and name in listing["handles"]
    assert int(listing["totalCount"]) == len(listing["handles"])


def test_secret_key_value_is_only_readable_by_its_admins(node, client):
    record = client.retrieve_handle_record_json(f"{PREFIX}/ADMIN")
    assert HS_SECKEY not in [v["type"] for v in record["values"]]
    with httpx.Client(base_url=node.http_url, timeout=10) as http:
        own = http.get(
            f"/api/handles/{PREFIX}/ADMIN",
            params={"index": 300},
            headers=basic(admin_identity(PREFIX), SECRET),
        ).json()
    assert own["values"][0]["type"] == HS_SECKEY
    assert own["values"][0]["data"]["value"].startswith("$pbkdf2-sha1$")
