"""The most UDP request/answer pairs a second this machine can carry, with no Python at all.

Two C processes (``bench/udp_floor.c``) on loopback: one answers every datagram with a
fixed answer of the size our cached answers have, the other keeps requests in flight. Each
exchange is the two ``send`` and two ``recv`` system calls any UDP server and client need;
on a 2-core machine with both on the same cores, this is the ceiling for ``idnode bench``
against ``idnode serve`` too. Needs gcc.

    .venv/bin/python bench/udp_floor.py [--seconds 5] [--outstanding 64] [--answer-bytes 330]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCE = Path(__file__).with_name("udp_floor.c")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--outstanding", type=int, default=64)
    parser.add_argument("--answer-bytes", type=int, default=330)
    args = parser.parse_args()
    if shutil.which("gcc") is None:
        print("gcc not found: cannot build the C pair", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "udp_floor")
        subprocess.run(["gcc", "-O2", "-o", binary, str(SOURCE)], check=True)
        port = free_udp_port()
        answerer = subprocess.Popen([binary, "answer", str(port), str(args.answer_bytes)])
        try:
            time.sleep(0.2)
            out = subprocess.run(
                [binary, "ask", str(port), str(args.outstanding), str(args.seconds)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        finally:
            answerer.kill()
            answerer.wait()
    rate = float(out.strip())
    print(
        f"UDP floor: {rate:,.0f} request/answer pairs a second (C on loopback, both processes"
        f" on the same {os.cpu_count()} cores, {args.outstanding} in flight,"
        f" {args.answer_bytes}-byte answers, {args.seconds:g} s, {platform.machine()})"
    )
    print(
        "reproduce: .venv/bin/python bench/udp_floor.py "
        f"--seconds {args.seconds:g} --outstanding {args.outstanding} "
        f"--answer-bytes {args.answer_bytes}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
