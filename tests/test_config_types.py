"""``config._set`` takes a boolean for a boolean setting (it refused every one: a bool is an
int to ``isinstance``), and still refuses a value of another type, in the file and in the
environment."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from idnode.config import ConfigError, _parse_env, _set


@dataclass
class Section:
    enabled: bool = False
    port: int = 8000
    name: str = "x"


def test_a_boolean_setting_takes_a_boolean():
    section = Section()
    _set(section, "enabled", True, "node.toml [t] enabled")
    assert section.enabled is True
    _set(section, "enabled", False, "node.toml [t] enabled")
    assert section.enabled is False


@pytest.mark.parametrize(("key", "value"), [("enabled", 1), ("enabled", "yes"), ("port", True)])
def test_a_value_of_another_type_is_refused(key, value):
    with pytest.raises(ConfigError, match=f"expected .*, got {value!r}"):
        _set(Section(), key, value, f"node.toml [t] {key}")


@pytest.mark.parametrize(("text", "parsed"), [("true", True), ("0", False), ("False", False)])
def test_a_boolean_from_the_environment(text, parsed):
    section = Section()
    _set(section, "enabled", _parse_env(text, section.enabled), "IDNODE_T_ENABLED")
    assert section.enabled is parsed


def test_a_word_that_is_no_boolean_is_refused_from_the_environment():
    section = Section()
    with pytest.raises(ConfigError, match="IDNODE_T_ENABLED: expected bool, got 'maybe'"):
        _set(section, "enabled", _parse_env("maybe", section.enabled), "IDNODE_T_ENABLED")
