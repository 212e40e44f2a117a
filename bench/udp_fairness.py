"""A light UDP client's share of answers while other addresses flood the node (issue 15, 8).

Serves a throw-away node (one worker), floods it from FLOOD_SOURCES loopback addresses with
cached resolution requests as fast as one core sends them, and meanwhile a light client on
its own address asks ``--count`` times, one request at a time. Prints the light client's
answer ratio and the flood's size. The flood sources are exempt from the per-address rate
limit: that models a flood from more addresses than that limit can hold back.

    .venv/bin/python bench/udp_fairness.py [--count 2000] [--sources 32] [--fair 1|0]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.transport helpers

from tests.transport.flood import Flood, light_client  # noqa: E402
from tests.transport.served import SMALL, seeded_node_dir, serve, stop  # noqa: E402


def run(
    count: int, sources: int, fair: int, processes: int, burst: int, miss: bool, wait: float
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        node = serve(
            seeded_node_dir(Path(tmp) / "node"),
            {
                "IDNODE_LIMITS_EXEMPT": "127.0.0.0/8",
                "IDNODE_LIMITS_UDP_FAIR_SHARE": str(fair),
            },
            Path(tmp) / "server.log",
        )
        try:
            target = (node.host, node.port)
            light_client(target, "127.0.1.1", SMALL, 5)  # warm the answer cache
            flood_from = [f"127.0.0.{i}" for i in range(2, 2 + sources)]
            asked = SMALL + "-{n}" if miss else SMALL
            with Flood(target, flood_from, asked, processes=processes, burst=burst) as flood:
                answered, ok = light_client(target, "127.0.1.1", SMALL, count, wait)
        finally:
            stop(node)
    return {"asked": count, "answered": answered, "ok": ok, "flood_sent": flood.sent}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--sources", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1, help="flooding processes")
    parser.add_argument("--fair", type=int, default=1, help="[limits] udp_fair_share")
    parser.add_argument("--burst", type=int, default=8, help="per source per 1 ms; 64: no pause")
    parser.add_argument("--cached", action="store_true", help="flood one cached identifier")
    parser.add_argument("--wait", type=float, default=0.5, help="seconds an answer is awaited")
    args = parser.parse_args()
    result = run(
        args.count,
        args.sources,
        args.fair,
        args.processes,
        args.burst,
        not args.cached,
        args.wait,
    )
    ratio = result["answered"] / result["asked"]
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}")
    print(
        f"udp_fair_share={args.fair}: light client answered {result['answered']}/{result['asked']}"
        f" ({ratio:.1%}), flood sent {result['flood_sent']} datagrams"
        f" from {args.sources} addresses"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
