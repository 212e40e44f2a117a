"""Identifier schemes other than Handle names (docs/schemes.md): GS1 keys, Ecode, OID.

Each scheme is one module that parses and validates its own form and maps it onto a Handle
identifier under a configured prefix, and back; ``registry`` holds the enabled ones. Pure
functions over strings: no store, no clock, no I/O, so the resolver, the HTTP routes and the
CLI all map a name the same way.
"""
