import random

import pytest

from idnode.model import HandleValue
from idnode.registry.templates import TemplateCatalog, TemplateViolation

CATALOG = TemplateCatalog.shipped()
GOOD = {
    "PART_NUMBER": "BP-1", "PART_NAME": "Brake pad", "MODEL": "X1", "BATCH": "B1",
    "PRODUCTION_DATE": "2026-11-02", "MANUFACTURER": "Fujian Auto Parts",
}  # fmt: skip


def test_five_sector_templates_with_real_fields():
    ids = {t.id for t in CATALOG}
    assert ids >= {"machinery-equipment", "auto-parts", "electronic-components",
                   "food-traceability", "pharmaceuticals"}  # fmt: skip
    for t in CATALOG:
        assert t.required and set(t.required) <= set(t.fields)
        indexes = [t.index_of(f) for f in t.fields]
        assert len(set(indexes)) == len(indexes) and min(indexes) >= 1
        assert all(i < 100 for i in indexes)  # HS_ADMIN lives at 100
    assert "BATCH" in CATALOG.get("food-traceability").required
    assert "APPROVAL_NUMBER" in CATALOG.get("pharmaceuticals").required
    assert CATALOG.get("auto-parts@1") is CATALOG.get("auto-parts")


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"BATCH": None}, "BATCH", "required"),
        ({"PRODUCTION_DATE": "2026-02-30"}, "PRODUCTION_DATE", "not a valid date"),
        ({"PRODUCTION_DATE": "02/11/2026"}, "PRODUCTION_DATE", "not a valid date"),
        ({"PART_NUMBER": "bp 1"}, "PART_NUMBER", "pattern"),
        ({"COLOUR": "red"}, "COLOUR", "not a field"),
        ({"MODEL": "x" * 65}, "MODEL", "too long"),
    ],
)
def test_violations_name_the_field(change, field, says):
    fields = {**GOOD, **{k: v for k, v in change.items() if v is not None}}
    for k, v in change.items():
        if v is None:
            del fields[k]
    with pytest.raises(TemplateViolation) as exc:
        CATALOG.get("auto-parts").check_fields(fields)
    assert exc.value.field == field
    assert says in exc.value.message and f"field {field}" in exc.value.message


def test_record_values_are_checked_by_type():
    t = CATALOG.get("auto-parts")
    values = [HandleValue(t.index_of(k), k, v.encode()) for k, v in GOOD.items()]
    t.check_values([*values, HandleValue(100, "HS_ADMIN", b"\0" * 10)])  # HS_ types ignored
    with pytest.raises(TemplateViolation, match="appears more than once"):
        t.check_values([*values, HandleValue(50, "BATCH", b"B2")])
    with pytest.raises(TemplateViolation, match="UTF-8"):
        t.check_values([*values[:-1], HandleValue(7, "MANUFACTURER", b"\xff")])


def test_fast_check_agrees_with_jsonschema():
    """The compiled check must say valid exactly when jsonschema does."""
    rnd = random.Random(6)
    pieces = ["", "2026-11-02", "2026-13-01", "BP-1", "bp 1", "x" * 70, "B1", "是", "9" * 20,
              "SC12345678901234", "国药准字H12345678", "2a", "yes", "https://x", "1.5"]  # fmt: skip
    for t in CATALOG:
        assert t._fast is not None
        names = list(t.fields) + ["EXTRA"]
        for _ in range(400):
            fields = {n: rnd.choice(pieces) for n in rnd.sample(names, rnd.randint(0, len(names)))}
            fast = t._fast(fields)
            slow = not list(t._validator.iter_errors(fields))
            assert fast == slow, (t.ref, fields)
