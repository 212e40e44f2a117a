"""``idnode verify``: a conformance suite for any Handle server (RFC 3651/3652 and REST).

The suite talks to a target through raw sockets and ``idnode.wire`` only, so it can send
deliberately broken bytes and judge answers byte by byte. Layout: ``catalogue`` (the check
registry), ``probes`` (send/receive with timeouts, recording every exchange), ``context``
(what a check may use), ``fixtures`` (test identifiers it writes and removes), ``checks_*``
(the checks, one module per area), ``runner``, ``reports`` and ``cli``.
"""

from idnode.verify.conformance.catalogue import CheckSpec, all_checks

__all__ = ["CheckSpec", "all_checks"]
