"""``make chromium`` installs the CJK font when the font is missing, not only when chromium is
(it skipped the font on a machine that had chromium). ``apt-get`` is replaced on PATH by a
script that records its arguments, so nothing is installed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def run_make(tmp_path, *, chromium: bool, font: bool) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "apt.log"
    log.write_text("")
    fake = bin_dir / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    present = tmp_path / "present"
    present.write_text("")
    present.chmod(0o755)
    subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "chromium",
         f"CHROMIUM={present if chromium else tmp_path / 'no-chromium'}",
         f"CJK_FONT={present if font else tmp_path / 'no-font'}"],
        check=True, capture_output=True, text=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    )  # fmt: skip
    return log.read_text()


def test_the_font_is_installed_when_only_the_font_is_missing(tmp_path):
    assert "install -y -qq chromium fonts-wqy-microhei" in run_make(
        tmp_path, chromium=True, font=False
    )


def test_nothing_is_installed_when_both_are_there(tmp_path):
    assert run_make(tmp_path, chromium=True, font=True) == ""


def test_both_are_installed_when_chromium_is_missing(tmp_path):
    assert "fonts-wqy-microhei" in run_make(tmp_path, chromium=False, font=True)
