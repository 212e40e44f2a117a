import pytest

from idnode.registry.creditcode import check_character, validate_credit_code
from idnode.registry.errors import RegistryError

# real-format codes whose check characters are known to be right (the standard's own example
# and codes of listed companies as printed on their business licences)
KNOWN_VALID = [
    "91350100M000100Y43",
    "914403001922038216",
    "91440300708461136T",
    "91330100716105852F",
    "91110000802100433B",
]


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_known_valid_codes(code):
    assert validate_credit_code(code) == code
    assert validate_credit_code(code.lower()) == code  # letters are read case-insensitively


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_every_wrong_check_character_is_refused(code):
    for c in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        if c == code[17]:
            continue
        with pytest.raises(RegistryError) as exc:
            validate_credit_code(code[:17] + c)
        assert exc.value.field == "credit_code"
        assert f"GB 32100-2015 gives {code[17]!r}" in exc.value.message


def test_a_changed_character_breaks_the_check():
    code = KNOWN_VALID[0]
    for i in range(17):
        changed = code[:i] + ("1" if code[i] != "1" else "2") + code[i + 1 :]
        assert check_character(changed[:17]) != code[17]


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("9135010M000100Y43", "18 characters"),
        ("91350100M000100Y433", "18 characters"),
        ("91350100M0001I0Y43", "'I' is not allowed"),
        ("91350100M000100O43", "'O' is not allowed"),
        ("913501A0M000100Y43", "administrative division"),
        ("", "18 characters"),
    ],
)
def test_malformed_codes_name_the_field(code, says):
    with pytest.raises(RegistryError) as exc:
        validate_credit_code(code)
    assert exc.value.field == "credit_code"
    assert says in exc.value.message
