"""Registration from the factory floor: production lines publish identifiers over MQTT.

``routes`` reads ``[ingest]``, ``messages`` the payloads and the answers, ``register`` writes
one registration through the registry and the one write service (idempotently, so a message
the broker redelivers after a crash is a no-op), ``mqtt`` is the persistent QoS 1 session
that acknowledges a message to the broker only after its write committed.
"""
