"""Names of handles and prefixes: the one place that splits them."""

from __future__ import annotations

import pytest

from idnode.errors import InvalidHandle
from idnode.names import HandleName, Prefix, parent_prefix, prefix_key, prefix_part


def test_a_prefix_knows_its_lineage():
    p = Prefix.parse("88.123.4567")
    assert [str(x) for x in p.lineage()] == ["88.123.4567", "88.123", "88"]
    assert p.parent == Prefix("88.123") and Prefix("88").parent is None
    assert p.is_under(Prefix("88")) and not Prefix("88").is_under(Prefix("88"))
    assert not Prefix("881").is_under(Prefix("88"))  # a dot, not a string prefix
    assert p.handle == "0.NA/88.123.4567"


@pytest.mark.parametrize("bad", ["", "88/1", "88 1", "88\x01"])
def test_a_bad_prefix_is_refused(bad):
    with pytest.raises(InvalidHandle):
        Prefix.parse(bad)


def test_a_handle_name_splits_once():
    h = HandleName.parse("20.500.1/ab/c")
    assert (str(h.prefix), h.suffix, h.key) == ("20.500.1", "ab/c", "20.500.1/AB/C")
    na = HandleName.parse("0.na/88.123")
    assert na.is_prefix_handle and na.named_prefix == Prefix("88.123")
    assert HandleName.parse("88/x").named_prefix is None
    with pytest.raises(InvalidHandle):
        HandleName.parse("no-slash")


def test_hot_path_accessors():
    assert prefix_part("88.1/x") == "88.1" and prefix_part("88.1") == "88.1"
    assert prefix_key("88.a/x") == "88.A" and prefix_key("88") is None
    assert parent_prefix("88.1.2") == "88.1" and parent_prefix("88") == ""
