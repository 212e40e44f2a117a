"""Drive the fuzz targets: a seeded mutation loop (CI) or Atheris/libFuzzer (``make fuzz``).

    .venv/bin/python -m tests.fuzz.driver --runs 20000 --seed 1      # pure Python, any machine
    .venv/bin/python -m tests.fuzz.driver --atheris --runs 1000000  # coverage-guided

Both start from ``corpus/<target>`` and the crash inputs in ``crashes/<target>`` (regression
inputs: every crash ever found is checked in there and replayed by the CI test). A crash
(any exception but ``IdnodeError``) is written to ``crashes/<target>/`` and re-raised.
Atheris runs one combined harness whose first input byte picks the target.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.targets import TARGETS, run_one

HERE = Path(__file__).resolve().parent
CORPUS, CRASHES = HERE / "corpus", HERE / "crashes"
NAMES = sorted(TARGETS)
_EXTREMES = (b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00", b"\x00\x01\x00\x00")


def seeds(name: str) -> list[bytes]:
    files = sorted((CORPUS / name).glob("*")) + sorted((CRASHES / name).glob("*"))
    return [f.read_bytes() for f in files] or [b""]


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """A few byte-level edits, libFuzzer style: flips, cuts, inserts, extreme 32-bit fields,
    splices with another seed."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        kind = rng.randrange(8)
        if kind == 0 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del buf[rng.randrange(len(buf) + 1) :]
        elif kind == 2:
            i = rng.randrange(len(buf) + 1)
            buf[i:i] = rng.randbytes(rng.randint(1, 8))
        elif kind == 3 and len(buf) >= 4:
            i = rng.randrange(len(buf) - 3)
            buf[i : i + 4] = rng.choice(_EXTREMES)
        elif kind == 4 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind == 5 and buf:
            del buf[rng.randrange(len(buf))]
        elif kind == 6:
            other = rng.choice(pool)
            cut = rng.randrange(len(buf) + 1)
            buf[cut:] = other[rng.randrange(len(other) + 1) :]
        elif kind == 7 and buf:
            i = rng.randrange(len(buf))
            buf[i:i] = buf[i : i + rng.randint(1, 16)]  # duplicate a run
    return bytes(buf)


def save_crash(name: str, data: bytes) -> Path:
    folder = CRASHES / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha1(data).hexdigest()[:16] + ".bin")
    path.write_bytes(data)
    return path


def run_python(runs: int, seed: int, names: list[str] | None = None) -> int:
    """``runs`` inputs spread over the targets: every seed first, then mutations."""
    names = names or NAMES
    rng = random.Random(seed)
    pools = {n: seeds(n) for n in names}
    done = 0
    for name in names:
        for data in pools[name]:
            _run_or_save(name, data)
            done += 1
    while done < runs:
        name = names[done % len(names)]
        pool = pools[name]
        _run_or_save(name, mutate(rng, rng.choice(pool), pool))
        done += 1
    return done


def _run_or_save(name: str, data: bytes) -> None:
    try:
        run_one(name, data)
    except Exception:
        path = save_crash(name, data)
        print(f"crash in {name}: input saved to {path}", file=sys.stderr)
        raise


def run_atheris(runs: int, seed: int) -> None:
    import atheris  # the optional 'fuzz' extra

    atheris.instrument_all()
    work = Path(tempfile.mkdtemp(prefix="idnode-fuzz-"))
    for i, name in enumerate(NAMES):
        for data in seeds(name):
            (work / f"{name}-{hashlib.sha1(data).hexdigest()[:12]}").write_bytes(bytes([i]) + data)

    def one(data: bytes) -> None:
        if not data:
            return
        name = NAMES[data[0] % len(NAMES)]
        try:
            run_one(name, data[1:])
        except Exception:
            print(f"crash in {name}: input saved to {save_crash(name, data[1:])}", file=sys.stderr)
            raise

    args = [sys.argv[0], f"-runs={runs}", f"-seed={seed}", "-max_len=4096", str(work)]
    atheris.Setup(args, one)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--atheris", action="store_true", help="coverage-guided (libFuzzer)")
    opts = parser.parse_args()
    start = time.perf_counter()
    if opts.atheris:
        try:
            run_atheris(opts.runs, opts.seed)  # libFuzzer exits the process itself
        except ImportError:
            print("atheris not installed; using the Python mutation loop", file=sys.stderr)
    done = run_python(opts.runs, opts.seed)
    took = time.perf_counter() - start
    print(f"fuzz: {done} inputs over {len(NAMES)} targets, no crash, {took:.1f}s")


if __name__ == "__main__":
    main()
