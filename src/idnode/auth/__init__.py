"""Authentication and authorisation: who is asking, and may they.

* ``identity``: ``Identity`` -- an ``index:handle`` key reference;
* ``challenge``: ``ChallengeBook`` -- nonces issued to challenged requests (single use, TTL);
* ``answers``: HS_SECKEY / HS_PUBKEY challenge answers in HSJ's byte layouts;
* ``secrets``: HS_SECKEY at rest (raw, HSJ hex SHA-1, our PBKDF2 form), HTTP Basic checks;
* ``sessions``: ``SessionTable`` -- authenticate once, for the wire and REST;
* ``headers`` / ``rest``: ``Authorization: Basic`` / ``Handle`` and REST session answers;
* ``acl``: ``AccessControl`` -- HS_ADMIN, HS_VLIST groups, operators.

No sockets here; time and randomness are passed in.
"""
