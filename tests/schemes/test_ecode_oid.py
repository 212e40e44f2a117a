"""Ecode (GB/T 31866) and OID (ISO/IEC 9834) plugins, and the registry that holds the
schemes a node's ``[schemes]`` enables (plugins included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from idnode.config import ConfigError, SchemesSection
from idnode.errors import InvalidHandle
from idnode.schemes.ecode import EcodeScheme
from idnode.schemes.ecode import parse as parse_ecode
from idnode.schemes.oid import OidScheme
from idnode.schemes.registry import SchemeRegistry

P = "20.500.77"


@pytest.mark.parametrize(
    ("code", "nsi", "md"),
    [
        ("10001" + "1" * 20, "0001", "1" * 20),  # V1: 4-digit NSI, 20-digit MD, 25 in all
        ("100011234567890", "0001", "1234567890"),
        ("2" + "0002" + "9" * 28, "0002", "9" * 28),
        ("3" + "10001" + "A1B2C3", "10001", "A1B2C3"),
        ("4" + "20001" + "车间7-泵", "20001", "车间7-泵"),
    ],
)
def test_ecode_versions_parse(code, nsi, md):
    parsed = parse_ecode(code)
    assert (parsed.version, parsed.nsi, parsed.md, str(parsed)) == (code[0], nsi, md, code)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("0" + "1" * 20, "version 0 is the 256-bit binary form"),
        ("5000112345", "unknown version digit '5'"),
        ("1000", "needs an NSI of 4 digits"),
        ("10001" + "1" * 21, "master data must be 1-20 digits"),
        ("10001ABC", "master data must be 1-20 digits"),
        ("3100011a", "1-39 digits or capitals"),
        ("40001", "NSI of 5 digits"),
        ("420001", "master data must be printable characters"),
    ],
)
def test_bad_ecodes_say_why(code, message):
    with pytest.raises(InvalidHandle) as caught:
        parse_ecode(code)
    assert message in caught.value.message


def test_ecode_maps_both_ways():
    scheme = EcodeScheme(P)
    assert scheme.to_handle("ecode:100011234567890") == f"{P}/ecode/100011234567890"
    assert scheme.to_handle("ECODE:100011234567890") == f"{P}/ecode/100011234567890"
    assert scheme.from_handle(f"{P}/ecode/100011234567890") == "ecode:100011234567890"
    assert scheme.from_handle(f"{P}/ecode/9") is None
    assert scheme.from_handle(f"{P}/other/100011234567890") is None


@pytest.mark.parametrize(
    ("text", "handle"),
    [
        ("urn:oid:1.2.156.10011", f"{P}/oid/1.2.156.10011"),
        ("URN:OID:2.999.1", f"{P}/oid/2.999.1"),
        ("oid:0.9.2342.19200300.100.1.1", f"{P}/oid/0.9.2342.19200300.100.1.1"),
    ],
)
def test_oids_map_both_ways(text, handle):
    scheme = OidScheme(P)
    assert scheme.to_handle(text) == handle
    assert scheme.from_handle(handle) == "urn:oid:" + handle.rpartition("/")[2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("urn:oid:1", "at least two arcs"),
        ("urn:oid:1.02.156", "arc '02' is not a decimal number without leading zeros"),
        ("urn:oid:3.1", "the first arc is 0, 1 or 2"),
        ("urn:oid:1.40", "under arc 1 the second arc is at most 39"),
        ("urn:oid:1.2.x", "arc 'x'"),
        ("urn:oid:1..2", "arc ''"),
    ],
)
def test_bad_oids_say_why(text, message):
    with pytest.raises(InvalidHandle) as caught:
        OidScheme(P).to_handle(text)
    assert message in caught.value.message


class ShelfScheme:
    """A plugin as an operator writes one: ``shelf:<n>`` -> ``<prefix>/shelf/<n>``."""

    name = "shelf"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def recognises(self, text: str) -> bool:
        return text.startswith("shelf:")

    def to_handle(self, text: str) -> str:
        return f"{self.prefix}/shelf/{int(text[6:])}"

    def from_handle(self, handle: str) -> str | None:
        head = f"{self.prefix}/shelf/"
        return "shelf:" + handle[len(head) :] if handle.startswith(head) else None


def test_the_registry_maps_by_configuration():
    default = SchemeRegistry.from_settings(SchemesSection(), [P])
    assert default.to_handle("urn:oid:1.2.156") == f"{P}/oid/1.2.156"
    assert default.to_handle("ecode:100011") == f"{P}/ecode/100011"
    assert default.to_handle("gs1:01/09506000134352") == f"{P}/01/09506000134352"
    assert default.to_handle(f"{P}/pump-7") == f"{P}/pump-7"  # a Handle name passes
    assert default.forms_of(f"{P}/oid/1.2.156") == {"oid": "urn:oid:1.2.156"}

    section = SchemesSection(
        enabled=["oid", "shelf"],
        prefixes=["oid=20.500.77.9"],
        plugins=[f"shelf={__name__}:ShelfScheme"],
    )
    chosen = SchemeRegistry.from_settings(section, [P])
    assert chosen.to_handle("urn:oid:1.2.156") == "20.500.77.9/oid/1.2.156"
    assert chosen.to_handle("shelf:12") == f"{P}/shelf/12"
    assert chosen.to_handle("ecode:100011") == "ecode:100011"  # not enabled: not mapped
    assert chosen.get("gs1") is None
    assert SchemeRegistry.from_settings(SchemesSection(), []).schemes == ()  # no prefix


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (SchemesSection(enabled=["isbn"]), "unknown scheme 'isbn'"),
        (SchemesSection(prefixes=["gs1"]), "is not name=prefix"),
        (SchemesSection(plugins=["x=nowhere"]), "is not name=package.module:Class"),
        (SchemesSection(plugins=["x=idnode.nowhere:X"]), "cannot load"),
    ],
)
def test_bad_settings_are_configuration_errors(section, message):
    with pytest.raises(ConfigError, match=message):
        SchemeRegistry.from_settings(section, [P])


def test_the_settings_load_from_the_node_file(tmp_path: Path):
    from idnode.config import load_config

    (tmp_path / "idnode.toml").write_text(
        '[node]\nprefixes = ["20.500.77"]\n[schemes]\nenabled = ["oid"]\nprefix = "20.500.77.1"\n'
    )
    cfg = load_config(tmp_path, env={"IDNODE_SCHEMES_PREFIXES": "oid=20.500.77.2"})
    registry = SchemeRegistry.from_settings(cfg.schemes, cfg.node.prefixes)
    assert registry.to_handle("urn:oid:1.2") == "20.500.77.2/oid/1.2"
