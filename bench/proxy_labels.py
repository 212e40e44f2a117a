"""What the proxy's own work and a QR label cost, in-process (no sockets, no store): the
10320/LOC choice, the HTML page of a record, and a label in SVG and PNG. Printed, never
asserted; a batch of labels for an import of N identifiers takes about N times the label's.

    .venv/bin/python bench/proxy_labels.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import time

from idnode.model import URL, HandleValue
from idnode.runtime import SeededRandom
from idnode.transport.labels import LabelOptions, qr_code
from idnode.transport.proxy_page import values_page
from idnode.transport.proxy_select import redirect_target

LOC = (
    b'<locations><location href="https://a.example/p" weight="3" country="de"/>'
    b'<location href="https://b.example/p" weight="1" country="cn"/>'
    b'<location href="https://c.example/p.json" weight="0" view="json"/></locations>'
)
VALUES = [HandleValue(1, URL, b"https://example.org/x"), HandleValue(2, "10320/LOC", LOC)]
VALUES += [HandleValue(i, "DESC", f"<b>part</b> 泵 {i}".encode()) for i in range(3, 13)]
URL_TEXT = "https://id.example.cn/88.123.4567/PUMP-2026-000123"


def rate(name: str, work, seconds: float) -> None:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            work()
        count += 50
    print(f"{name:<38} {count / elapsed:>10.0f} /s   {elapsed / count * 1e6:>8.1f} µs each")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    seconds = parser.parse_args().seconds
    random = SeededRandom(1)
    rate("10320/LOC weighted choice", lambda: redirect_target(VALUES, (), random), seconds)
    rate(
        "10320/LOC locatt=country:cn",
        lambda: redirect_target(VALUES, (("country", "cn"),), random),
        seconds,
    )  # noqa: E501
    rate("HTML page of 12 values", lambda: values_page("88.123/x", VALUES, "zh", "n"), seconds)
    rate("QR label, SVG, level M", lambda: qr_code(URL_TEXT, LabelOptions("svg")), seconds)
    rate(
        "QR label, PNG scale 8, level H",
        lambda: qr_code(URL_TEXT, LabelOptions("png", 8, 4, "H")),
        seconds,
    )  # noqa: E501


if __name__ == "__main__":
    main()
