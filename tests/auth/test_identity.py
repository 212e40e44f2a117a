"""Identity: ``index:handle``, compared case-insensitively."""

from __future__ import annotations

import pytest

from idnode.auth.identity import Identity
from idnode.errors import InvalidCredential
from idnode.model import ValueReference


def test_parse_and_str():
    ident = Identity.parse("300:0.NA/20.500")
    assert ident == Identity("0.NA/20.500", 300)
    assert str(ident) == "300:0.NA/20.500"
    assert ident.as_reference() == ValueReference("0.NA/20.500", 300)


def test_handle_may_contain_colons():
    assert Identity.parse("1:20.500/a:b") == Identity("20.500/a:b", 1)


def test_case_insensitive_equality_and_hash():
    a, b = Identity("0.na/x", 300), Identity("0.NA/X", 300)
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a in frozenset([b])
    assert a != Identity("0.NA/X", 301)
    assert a.handle == "0.na/x"  # the spelling is kept


def test_frozen():
    ident = Identity("0.NA/X", 300)
    with pytest.raises(AttributeError):
        ident.index = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "300",
        "300:",
        ":0.NA/X",
        "x:0.NA/X",
        "-1:0.NA/X",
        "0:0.NA/X",
        "+3:0.NA/X",
        "99999999999:0.NA/X",
        "2147483648:0.NA/X",
        "٣:0.NA/X",
    ],
)
def test_parse_refuses(text):
    with pytest.raises(InvalidCredential):
        Identity.parse(text)


@pytest.mark.parametrize("args", [("", 1), ("h", 0), ("h", -5), ("h", True), ("h", 1 << 31)])
def test_constructor_checks(args):
    with pytest.raises(InvalidCredential):
        Identity(*args)


def test_matched_by():
    ident = Identity("0.NA/X", 300)
    assert ident.matched_by(ValueReference("0.na/x", 300))
    assert ident.matched_by(ValueReference("0.NA/X", 0))  # index 0: any index
    assert not ident.matched_by(ValueReference("0.NA/X", 301))
    assert not ident.matched_by(ValueReference("0.NA/Y", 300))
