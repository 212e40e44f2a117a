"""An independent Handle client in the shape of HANDLE.NET 9's Java tools (HSJ).

Written from RFC 3652 and the HANDLE.NET technical manual, not from idnode's ``wire`` codec,
so a test that drives idnode with it checks idnode against the protocol and not against
idnode's own reading of it. Only ``struct``, ``socket`` and ``urllib.parse`` are used:

* ``codec.py``: the envelope (RFC 3652 §2.2.1), the header (§2.2.2), the request bodies the
  tests send (resolution §3.1, get-siteinfo §3.2, create §3.7.1, session terminate §3.8) and
  the answers they read (error body §3.3, challenge §3.5.1);
* ``client.py``: the three ways HSJ's ``HandleResolver`` reaches a server -- one UDP
  datagram, one TCP connection per request, and HDL-over-HTTP (``POST /<handle>`` with
  ``application/x-hdl-message``, the envelope and message as the entity, the answer framed
  the same way) -- and the check HSJ makes on every answer: an expiration time that has
  passed (0 included) is refused as ``GOT_EXPIRED_MESSAGE``; UDP answers longer than one
  512-byte datagram are reassembled by sequence number, as HSJ does;
* ``session.py``: the client half of a Diffie-Hellman session (RFC 3652 §3.8, HSJ's
  layouts) with ``cryptography`` only: setup, key derivation, HS_MAC, decryption of an
  encrypted answer, ``SessionExchangeKey``.
"""
