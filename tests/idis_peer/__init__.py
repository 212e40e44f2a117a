"""An independent client in the shape of Teleinfo's ``id-pointer-sdk`` (the IDIS Java SDK).

Written from the SDK's public source, not from idnode's ``wire`` codec, so a test that drives
idnode with it checks idnode against the SDK's layouts and not against idnode's own reading
of them. Every layout names the SDK file it comes from:

* ``codec.py``: envelope, header and bodies (``core/Encoder.java``, ``core/MsgConverter.java``,
  ``core/AbstractMessage.java``);
* ``auth.py``: the challenge answers of ``core/PublicKeyAuthenticationInfo.java``;
* ``peer.py``: one TCP connection as ``transport/TransportOnTcpLogin.java`` drives it
  (client-chosen session id from ``session/SessionIdFactoryDefault.java``, get-siteinfo,
  then the 2001 login and its challenge).

Only ``struct``, ``hashlib``, ``cryptography`` and idnode's SM2 primitive (``idnode.crypto.sm2``,
which cryptography lacks) are used.
"""
