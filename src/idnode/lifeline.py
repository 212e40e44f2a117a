"""Child processes die with their parent (issue 15, item 7).

A worker of ``idnode serve --workers N`` or an import's parse process is only useful to the
process that started it. If that parent is killed outright (``kill -9``, the OOM killer) it
cannot stop them, and they kept running: serving with stale settings, holding ports, or
parsing a file for nobody. So each such child calls ``die_with_parent`` first thing:

* on Linux the kernel sends the child a signal when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``); the parent may have died before the call, so the child
  then checks that its parent is still the one that started it;
* elsewhere a daemon thread watches the parent's pid and ends the process when it changes.

``PR_SET_PDEATHSIG`` fires when the *thread* that started the child ends, so start such
children from a thread that lives as long as the process (the main thread, or the event
loop's): both callers do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_INTERVAL = 1.0  # seconds between checks of the parent, where prctl is unavailable


def die_with_parent(parent_pid: int | None, sig: int = signal.SIGTERM) -> None:
    """End this process with ``sig`` when ``parent_pid`` (the process that started it)
    dies; ends it now if that already happened. ``None``: no known parent, nothing to do."""
    if parent_pid is None:
        return
    if not (sys.platform.startswith("linux") and _prctl_pdeathsig(sig)):
        _watch(parent_pid, sig)
    if os.getppid() != parent_pid:  # the parent died before we could ask
        os.kill(os.getpid(), sig)


def _prctl_pdeathsig(sig: int) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int, sig: int) -> None:
    def watch() -> None:
        while not stop.wait(WATCH_INTERVAL):
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), sig)
                return

    stop = threading.Event()
    threading.Thread(target=watch, name="idnode-parent-watch", daemon=True).start()
