"""Node configuration: one ``idnode.toml`` per node directory, overridable by ``IDNODE_*``.

Every setting has a default that runs on one machine with no setup. An environment variable
``IDNODE_<SECTION>_<KEY>`` (for example ``IDNODE_SERVER_HTTP_PORT=8080``) overrides the file,
so containers and CI can reconfigure a node without editing it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

CONFIG_NAME = "idnode.toml"


@dataclass
class NodeSection:
    name: str = "idnode"
    prefixes: list[str] = field(default_factory=list)
    site_serial: int = 1


@dataclass
class ServerSection:
    host: str = "127.0.0.1"
    udp_port: int = 2641
    tcp_port: int = 2641
    http_port: int = 8000
    # The address published in HS_SITE; defaults to ``host`` (``0.0.0.0`` publishes 127.0.0.1).
    public_address: str = ""
    # processes sharing the ports (SO_REUSEPORT) and the store; 0 = one per core (default)
    workers: int = 0
    # encoded answers to anonymous resolutions kept per worker; 0 disables the cache
    cache_entries: int = 100_000
    # who may read /metrics without an operator token: hosts or CIDRs (docs/security.md)
    metrics_allow: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    # origins whose browser apps may call the REST and management APIs (CORS, as HANDLE.NET's
    # cross-origin filter): "*" for any, [] for none (transport/cors.py)
    cors_origins: list[str] = field(default_factory=lambda: ["*"])


@dataclass
class StoreSection:
    url: str = "sqlite:///node.db"
    # a PostgreSQL streaming replica of ``url``: resolution reads there (docs/scaling.md)
    read_url: str = ""


@dataclass
class KeysSection:
    private_key: str = "server_privkey.pem"


@dataclass
class AuthSection:
    challenge_ttl: int = 60  # seconds a challenge nonce stays answerable (once)
    session_timeout: int = 3600  # idle seconds before an authenticated session ends
    # keyed native sessions (transport.wire_sessions): suites offered, preferred first
    session_suites: list[str] = field(default_factory=lambda: ["hsj", "idis-sm"])


@dataclass
class LimitsSection:
    """Abuse limits (``idnode.transport.limits``); a rate of 0 switches that limit off.

    Generous for real clients; loopback is exempt so the test suite and benchmarks run on
    one machine unthrottled (set ``exempt = []`` to limit it too, as the limit tests do).
    """

    exempt: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])  # hosts or CIDRs
    resolve_rate: int = 1000  # requests per second per client IP, every transport
    resolve_burst: int = 2000
    auth_rate_per_minute: int = 30  # failed proofs and session setups per client IP
    auth_burst: int = 10
    # failed proofs per identity (whatever the address), so guessing from many addresses stops
    auth_identity_rate_per_minute: int = 30
    auth_identity_burst: int = 20
    # requests that write without credentials (an organisation's application) per client IP
    anonymous_write_rate_per_minute: int = 6
    anonymous_write_burst: int = 10
    anonymous_write_per_day: int = 50  # and at most this many a day per client IP (0 = off)
    max_clients: int = 100_000  # client addresses tracked per limiter (LRU beyond)
    udp_amplification: int = 3  # UDP answer <= this x request, else truncated (0 = off)
    tcp_read_deadline: int = 10  # seconds to finish a message once its first byte arrived
    tcp_max_connections_per_ip: int = 64
    http_max_connections_per_ip: int = 64
    # stream connections (TCP, TLS, HTTP, HTTPS) per process; 0 = the descriptor limit minus
    # headroom. When full, the longest-idle connection is closed for a newcomer.
    max_connections: int = 0
    http_keep_alive: int = 5  # seconds an idle keep-alive HTTP connection stays open
    http_request_timeout: int = 30  # seconds one HTTP request may take to arrive (slowloris)
    http_max_concurrency: int = 1000  # requests being answered at once; beyond: 503
    http_max_body: int = 16 * 1024 * 1024  # bytes of a request entity; beyond: 413
    http_max_request_line: int = 8 * 1024  # bytes of method + target + version; beyond: 414
    http_max_header_bytes: int = 16 * 1024  # bytes of the request head; beyond: 431
    http_max_header_count: int = 100  # header fields of one request; beyond: 431
    udp_fair_share: int = 1  # 1: under overload, shed the heaviest UDP sources first; 0: off


@dataclass
class TlsSection:
    """TLS (``idnode.transport.tls``); a port of 0 leaves that listener off.

    Paths are relative to the node directory. ``client_ca_file`` makes HTTPS ask for client
    certificates issued by that CA (``Authorization: Handle clientCert="true"``).
    """

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""
    https_port: int = 0  # HTTPS for the REST API
    tcp_port: int = 0  # the Handle binary protocol inside TLS (not a Handle.Net standard)


@dataclass
class SecuritySection:
    """Encryption at rest (``idnode.store.encrypted``): the storage key file, relative to the
    node directory; empty = off unless ``IDNODE_STORAGE_KEY`` is set. ``idnode init`` makes
    one."""

    storage_key_file: str = ""


@dataclass
class HierarchySection:
    """The node's place in the identifier tree (``idnode.hierarchy``); whole seconds throughout.

    ``role``: root | top-level | secondary | enterprise | recursive ("" = standalone node).
    ``parent``: the parent's HTTP API (``http://host:port``, ``host:port`` or an HS_SITE file).
    ``health_timeout`` 0 means three of the interval each child declares in its reports.
    """

    role: str = ""
    parent: str = ""
    root_info: str = ""  # the root's HS_SITE (file), where recursive resolution starts
    recursion: int = 0  # 1: answer requests with the REC flag for handles homed elsewhere
    report_interval: int = 60  # seconds between reports to the parent (0 = never)
    health_timeout: int = 0  # seconds without a report before a child is unhealthy
    token_ttl: int = 86400  # lifetime of an enrolment token
    cache_entries: int = 10_000  # answers the recursive cache keeps (LRU beyond)
    negative_ttl: int = 60  # seconds a "not found" is cached
    max_ttl: int = 300  # cap on any cached TTL: a suspension reaches recursive caches by then
    stale_seconds: int = 300  # how long past expiry an answer may be served if upstream is down
    upstream_timeout: int = 2  # seconds per upstream query; a whole resolution gets 4x this


@dataclass
class ProtocolSection:
    """Which binary-protocol dialect TCP clients speak (``idnode.transport.idis``).

    ``profile``: ``handle`` (Handle.Net clients only: a session id the node did not issue is
    500, opcode 2001 is not supported), ``idis`` (every TCP connection is a Teleinfo IDIS SDK
    client: the session id it chooses is its connection's), or ``auto`` (both at once: a
    connection is IDIS once it logs in with opcode 2001 or asks for site information under
    a session id of its own).
    """

    profile: str = "auto"


@dataclass
class QuotasSection:
    """Per-identity quotas (``idnode.service.quotas``), counted in the store so every worker
    and host agrees; 0 switches a quota off. Node operators have none.

    ``daily_requests``: writes and authenticated resolutions per UTC day (IDIS code 603);
    ``registrations_per_prefix``: identifiers created under one prefix (604);
    ``prefixes_per_organisation``: prefix handles ``0.NA/...`` created (605). An identity's
    quotas are shared with its organisation's when it has a registry account.
    ``overrides``: ``"300:0.NA/88.1000.1 daily_requests=100000 prefixes_per_organisation=3"``,
    one identity per entry, for the quotas that differ from the defaults above.
    """

    daily_requests: int = 0
    registrations_per_prefix: int = 0
    prefixes_per_organisation: int = 0
    overrides: list[str] = field(default_factory=list)


@dataclass
class IngestSection:
    """Registration from the factory floor over MQTT (``idnode.ingest``, docs/ingest.md).

    ``mqtt_url``: ``mqtt://host:1883`` (empty: off). ``topics``: one entry per production
    line, ``"<topic> prefix=<prefix> template=<id> account=<registrar>"``. Only one process
    of a node ingests (worker 0), as one persistent MQTT session named ``client_id``.
    """

    mqtt_url: str = ""
    client_id: str = ""  # the persistent session's name; "" = idnode-<node name>
    topics: list[str] = field(default_factory=list)
    dead_letter_topic: str = "idnode/ingest/dead-letter"
    session_expiry: int = 7 * 86400  # seconds the broker keeps the session while we are away
    receive_maximum: int = 100  # messages the broker may have unacknowledged with us at once


@dataclass
class SchemesSection:
    """Names of other identifier schemes mapped onto Handle identifiers (docs/schemes.md):
    GS1 keys and Digital Link URIs, Ecode (GB/T 31866), OID (``urn:oid:``)."""

    enabled: list[str] = field(default_factory=lambda: ["gs1", "ecode", "oid"])
    prefix: str = ""  # the Handle prefix names map under; "" = the node's first prefix
    prefixes: list[str] = field(default_factory=list)  # per scheme: "gs1=20.500.123.1"
    plugins: list[str] = field(default_factory=list)  # more schemes: "name=package.module:Class"
    resolver_name: str = ""  # the name /.well-known/gs1resolver gives; "" = [node] name


@dataclass
class ConsoleSection:
    """The web console at ``/console`` (``idnode.console``): its sign-in sessions."""

    idle_timeout: int = 1800  # seconds without a request before a console session ends
    max_age: int = 43200  # seconds after sign-in when it ends whatever the activity


@dataclass
class ReplicationSection:
    """Mirrors and failover (docs/replication.md).

    ``role``: primary (takes writes, serves its log) or mirror (follows ``sources``).
    ``sources``: HOST:PORT of the site's other servers (TCP), the primary first; a mirror
    pulls from the one with the newest epoch that serves its log. ``identity`` and ``key``:
    who a mirror authenticates as. ``admins``: identities allowed to pull from this node,
    besides its operators (HSJ's replication admins). ``peers``: servers a primary asks at
    start for a newer epoch (a promotion), to fence itself. ``keep_log_days``: how long the
    transaction log and the governance changes are kept for mirrors (0: for ever); a mirror
    further behind is told to redump."""

    role: str = "primary"
    sources: list[str] = field(default_factory=list)
    identity: str = ""
    key: str = ""
    admins: list[str] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    interval_ms: int = 200  # a mirror's pause between pulls that found nothing new
    keep_log_days: int = 30  # replication.retention.DEFAULT_KEEP_DAYS; 0 keeps for ever


@dataclass
class LogSection:
    level: str = "INFO"
    format: str = "auto"  # auto | json | text


@dataclass
class Config:
    """A node's settings plus the directory they were read from."""

    directory: Path
    node: NodeSection = field(default_factory=NodeSection)
    server: ServerSection = field(default_factory=ServerSection)
    store: StoreSection = field(default_factory=StoreSection)
    keys: KeysSection = field(default_factory=KeysSection)
    auth: AuthSection = field(default_factory=AuthSection)
    log: LogSection = field(default_factory=LogSection)
    tls: TlsSection = field(default_factory=TlsSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    hierarchy: HierarchySection = field(default_factory=HierarchySection)
    protocol: ProtocolSection = field(default_factory=ProtocolSection)
    quotas: QuotasSection = field(default_factory=QuotasSection)
    ingest: IngestSection = field(default_factory=IngestSection)
    schemes: SchemesSection = field(default_factory=SchemesSection)
    console: ConsoleSection = field(default_factory=ConsoleSection)
    replication: ReplicationSection = field(default_factory=ReplicationSection)

    @property
    def store_url(self) -> str:
        """The store URL with a relative SQLite path resolved against the node directory."""
        url = self.store.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            return "sqlite://" + str(self.directory / url.removeprefix("sqlite:///"))
        return url

    @property
    def private_key_path(self) -> Path:
        return self.directory / self.keys.private_key

    def path(self, name: str) -> Path | None:
        """A file setting resolved against the node directory; None when unset."""
        return self.directory / name if name else None

    @property
    def published_address(self) -> str:
        addr = self.server.public_address or self.server.host
        return "127.0.0.1" if addr in ("0.0.0.0", "", "localhost") else addr


_SECTIONS = (
    "node", "server", "store", "keys", "auth", "log", "limits", "tls", "security", "hierarchy",
    "protocol", "quotas", "ingest", "schemes", "console", "replication",
)  # fmt: skip


class ConfigError(ValueError):
    """The configuration file or an override is invalid."""


def load_config(directory: str | Path, env: dict[str, str] | None = None) -> Config:
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not path.exists():
        raise ConfigError(f"no {CONFIG_NAME} in {directory} (run `idnode init {directory}` first)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    cfg = Config(directory=directory)
    for name in _SECTIONS:
        _apply(getattr(cfg, name), name, raw.get(name, {}), str(path))
    env = os.environ if env is None else env
    for name in _SECTIONS:
        section = getattr(cfg, name)
        for f in fields(section):
            key = f"IDNODE_{name.upper()}_{f.name.upper()}"
            if key in env:
                _set(section, f.name, _parse_env(env[key], getattr(section, f.name)), key)
    return cfg


def _apply(section: Any, name: str, values: dict[str, Any], origin: str) -> None:
    known = {f.name for f in fields(section)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{origin}: unknown setting [{name}] {key}")
        _set(section, key, value, f"{origin} [{name}] {key}")


def _set(section: Any, key: str, value: Any, origin: str) -> None:
    current = getattr(section, key)
    # exact types: a bool is an int to isinstance, so ``true`` for a number (or 1 for a
    # switch) is refused, while a bool for a bool setting is taken
    if type(current) is not type(value):
        if not (isinstance(current, list) and isinstance(value, list)):
            raise ConfigError(f"{origin}: expected {type(current).__name__}, got {value!r}")
    setattr(section, key, value)


def _parse_env(text: str, current: Any) -> Any:
    if isinstance(current, bool):
        lowered = text.strip().lower()
        return {"true": True, "1": True, "false": False, "0": False}.get(lowered, text)
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            return text
    if isinstance(current, list):
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def render_config(cfg: Config) -> str:
    """TOML text for ``cfg`` (the subset of TOML our settings need)."""
    lines = ["# idnode node configuration; IDNODE_<SECTION>_<KEY> overrides any setting."]
    for name in _SECTIONS:
        lines.append(f"\n[{name}]")
        section = getattr(cfg, name)
        for f in fields(section):
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
