"""The in-process node on real UDP and TCP sockets, with a clock the test moves
(tests/transport/conftest.py), for the independent HSJ-shaped client."""

from tests.transport.conftest import node_template, wire_node  # noqa: F401
