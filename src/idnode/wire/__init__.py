"""The Handle protocol on the wire (RFC 3651, RFC 3652), sans I/O.

Bytes in, dataclasses out, and back. No socket, no store, no clock lives here: transports
feed bytes and act on the events; tests feed hand-written byte vectors.
"""
