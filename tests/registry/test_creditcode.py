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


# -- issue 20: placeholders, codes inside records, dates in order ----------------------------
@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("000000000000000000", "registration authority '0'"),  # its check character is 0
        ("B1350100M000100Y43", "registration authority 'B'"),
        ("913501000000000000", "placeholder"),  # organisation code all zeros
        ("910000001922038216", "placeholder"),  # division all zeros
    ],
)
def test_placeholder_codes_are_refused(code, says):
    with pytest.raises(RegistryError, match=says):
        validate_credit_code(code[:17] + check_character(code[:17]))


def test_credit_codes_inside_records_get_the_check_character():
    from idnode.registry.templates import TemplateCatalog, TemplateViolation

    auto = TemplateCatalog.shipped().get("auto-parts")
    good = {"PART_NUMBER": "BP-1", "PART_NAME": "Brake pad", "MODEL": "X1", "BATCH": "B1",
            "PRODUCTION_DATE": "2026-11-02", "MANUFACTURER": "Fujian Auto Parts"}  # fmt: skip
    auto.check_fields({**good, "MANUFACTURER_CODE": KNOWN_VALID[0]})
    for bad in ("91350100M000100Y44", "000000000000000000"):  # both match the pattern
        with pytest.raises(TemplateViolation, match="GB 32100") as exc:
            auto.check_fields({**good, "MANUFACTURER_CODE": bad})
        assert exc.value.field == "MANUFACTURER_CODE"


def test_an_expiry_before_the_production_date_is_refused():
    from idnode.registry.templates import TemplateCatalog, TemplateViolation

    pharma = TemplateCatalog.shipped().get("pharmaceuticals")
    record = {"DRUG_NAME": "Amoxicillin", "APPROVAL_NUMBER": "国药准字H20003263",
              "DOSAGE_FORM": "capsule", "SPECIFICATION": "0.25 g", "BATCH": "A1",
              "PRODUCTION_DATE": "2026-11-02", "EXPIRY_DATE": "2028-10-31",
              "MANUFACTURER": "Fujian Pharma"}  # fmt: skip
    pharma.check_fields(record)
    pharma.check_fields({**record, "EXPIRY_DATE": "2026-11-02"})  # the same day is allowed
    with pytest.raises(TemplateViolation, match="before PRODUCTION_DATE") as exc:
        pharma.check_fields({**record, "EXPIRY_DATE": "2026-11-01"})
    assert exc.value.field == "EXPIRY_DATE"
