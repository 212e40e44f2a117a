"""The test & verification kit: the load generator (``idnode bench``) lives here.

Modules, one job each:

* ``histogram``  log-linear latency histogram with mergeable counts (HDR-style)
* ``workload``   key sets, the hit/miss/typed mix, and the bytes each request puts on the wire
* ``results``    what one run counts: outcomes per kind, errors per kind, per-second timeline
* ``load_udp`` / ``load_tcp`` / ``load_http``  one client channel per protocol
* ``engine``     closed-loop and fixed-rate drivers over a channel, in one event loop
* ``runner``     several client processes, started together, results merged in the parent
* ``prepare``    a throw-away seeded node served on free loopback ports
* ``report`` / ``svg``  Rich table, JSON and a self-contained HTML page
* ``bench_cli``  the Typer sub-app registered as ``idnode bench``
"""
