"""Mirrors, failover and backups (docs/replication.md): the pull loop of a mirror, the fence
that stops a superseded primary, promotion, and online backups with their restore."""
