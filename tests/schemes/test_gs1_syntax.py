"""GS1 Digital Link syntax (schemes.gs1): the standard's own examples parse, and each kind of
mistake is refused with the message a resolver must give (400 over HTTP)."""

from __future__ import annotations

import pytest

from idnode.errors import InvalidHandle
from idnode.schemes.gs1 import GS1Scheme, parse_path, parse_uri
from idnode.schemes.gs1_ai import TABLE, check_digit, with_check_digit

# examples printed in GS1 Digital Link 1.2 and the GS1 General Specifications
VALID = [
    ("/01/09506000134352", "01", "09506000134352", ()),
    ("/01/09506000134352/10/ABC/21/123", "01", "09506000134352", (("10", "ABC"), ("21", "123"))),
    ("/01/09506000134352/10/ABC1/21/12345", "01", "09506000134352",
     (("10", "ABC1"), ("21", "12345"))),
    ("/01/09506000134352/22/2A/10/ABC/21/7", "01", "09506000134352",
     (("22", "2A"), ("10", "ABC"), ("21", "7"))),
    ("/01/09506000134352/235/TPX-1", "01", "09506000134352", (("235", "TPX-1"),)),
    ("/00/106141412345678908", "00", "106141412345678908", ()),
    ("/414/9520123456788", "414", "9520123456788", ()),
    ("/414/9520123456788/254/32a%2Fb", "414", "9520123456788", (("254", "32a/b"),)),
    ("/8003/03870585000552987", "8003", "03870585000552987", ()),
    ("/8004/0952123abc", "8004", "0952123abc", ()),
    ("/01/9506000134352", "01", "09506000134352", ()),  # GTIN-13, padded to 14
]  # fmt: skip


@pytest.mark.parametrize(("path", "key", "value", "qualifiers"), VALID)
def test_the_standards_examples_parse(path, key, value, qualifiers):
    link = parse_path(path)
    assert (link.key, link.value, link.qualifiers) == (key, value, qualifiers)


INVALID = [
    ("/01/09506000134353", "check digit 3 is wrong, expected 2"),
    ("/00/106141412345678909", "check digit 9 is wrong, expected 8"),
    ("/414/9520123456789", "check digit 9 is wrong, expected 8"),
    ("/8003/03870585000553987", "check digit 3 is wrong, expected 2"),
    ("/01/09506000134", "does not match its format N14"),
    ("/01/09506000134352/21/123/10/ABC", "10 (BATCH/LOT) must come before 21 (SERIAL)"),
    ("/01/09506000134352/10/A/10/B", "must come before"),
    ("/01/09506000134352/99/ABC", "unknown GS1 application identifier 99"),
    ("/01/09506000134352/17/261231", "17 (USE BY OR EXPIRY) is not a key qualifier of 01"),
    ("/01/09506000134352/254/X", "254 (GLN EXTENSION COMPONENT) is not a key qualifier of 01"),
    ("/01/09506000134352/10/ABC/235/X", "cannot be combined"),
    ("/10/ABC", "10 (BATCH/LOT) is not a GS1 primary key"),
    ("/01/09506000134352/10", "dangling segment"),
    ("/01/09506000134352/10/" + "A" * 21, "does not match its format X..20"),
    ("/01/09506000134352/10/AB%20C", "does not match its format X..20"),  # space: not CSET 82
    ("/gtin/09506000134352", "not a GS1 application identifier"),
]


@pytest.mark.parametrize(("path", "message"), INVALID)
def test_mistakes_are_refused_with_their_reason(path, message):
    with pytest.raises(InvalidHandle) as caught:
        parse_path(path)
    assert message in caught.value.message


def test_data_attributes_in_the_query_are_checked():
    link = parse_path("/01/09506000134352/10/ABC", [("17", "261231"), ("linkType", "all")])
    assert link.attributes == (("17", "261231"),)
    assert parse_path("/01/09506000134352", [("7003", "2612312359")]).attributes
    with pytest.raises(InvalidHandle, match="17 .* does not match its format N6"):
        parse_path("/01/09506000134352", [("17", "261332")])  # month 13
    with pytest.raises(InvalidHandle, match="unknown GS1 application identifier 9876"):
        parse_path("/01/09506000134352", [("9876", "1")])


def test_check_digits_of_every_keyed_ai():
    assert check_digit("0950600013435") == 2
    for ai in TABLE.values():
        if ai.check:  # a value of the right length with its check digit passes, +1 fails
            digits = with_check_digit("1" * (ai.check - 1))
            good = digits + ("0" * (18 - ai.check) if ai.code == "8006" else "")
            parse = GS1Scheme("20.500.77").to_handle
            if ai.is_primary_key:
                assert parse(f"gs1:{ai.code}/{good}").endswith(good)
                bad = digits[:-1] + str((int(digits[-1]) + 1) % 10) + good[len(digits) :]
                with pytest.raises(InvalidHandle, match="check digit"):
                    parse(f"gs1:{ai.code}/{bad}")


def test_the_mapping_goes_both_ways():
    gs1 = GS1Scheme("20.500.77")
    handle = gs1.to_handle("gs1:01/09506000134352/10/AB%2FC/21/123")
    assert handle == "20.500.77/01/09506000134352/10/AB%2FC/21/123"
    assert gs1.from_handle(handle) == "gs1:01/09506000134352/10/AB%2FC/21/123"
    assert gs1.link_of(handle).qualifiers == (("10", "AB/C"), ("21", "123"))
    # every written form of one key names one identifier
    forms = [
        "gs1:(01)09506000134352(10)ABC",
        "gs1:01/9506000134352/10/ABC",
        "https://id.gs1.org/01/09506000134352/10/ABC?17=261231",
        "https://example.com/some/path/01/09506000134352/10/ABC",
    ]
    assert {gs1.to_handle(f) for f in forms} == {"20.500.77/01/09506000134352/10/ABC"}
    assert gs1.from_handle("20.500.77/pump-7") is None
    assert gs1.from_handle("20.500.78/01/09506000134352") is None
    assert parse_uri("https://id.gs1.org/414/9520123456788").key == "414"
