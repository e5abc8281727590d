"""One `Config`, read from explicit arguments, then `BCHOOKS_*` environment variables, then defaults.

Settings are data (`SETTINGS`): the README's configuration table and its test are checked against it.
Secrets (`secrets`, `token`) never appear in `repr`.
"""

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import ConfigError


def _text(name, raw):
    return raw.strip()


#: what a `db` setting starts with when it names a PostgreSQL database rather than a SQLite file
DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(db: Any) -> bool:
    """Whether a `db` setting names a database server (PostgreSQL) rather than a SQLite file."""
    return str(db).startswith(DATABASE_URL_SCHEMES)


_URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|\s")


def _store_path(name, raw):
    """A SQLite file's path or a PostgreSQL URL; any other URL, or one that does not parse, is refused in one
    sentence that never holds its password (which is remembered as a secret first)."""
    value = str(raw).strip()
    if "://" in value or _URL_LIKE.match(value):
        from .secrecy import display_url, remember_password_of
        remember_password_of(value)
        scheme = value.split(":", 1)[0]
        if not is_database_url(value):
            raise ConfigError(f"{name} must be the path of a SQLite file or a postgresql:// URL, got a "
                              f"{scheme}: URL")
        if not value.split("://", 1)[1].strip("/"):
            raise ConfigError(f"{name}: a PostgreSQL URL names a server and database, e.g. "
                              "postgresql://bchooks@db.example.com/bchooks")
        if _BAD_ESCAPE.search(value):
            raise ConfigError(f"{name} holds a space or a '%' that is not percent-encoded (write a space as %20 "
                              f"and % as %25, also in the password): {display_url(value)}")
        try:
            urlsplit(value).port  # noqa: B018 (a port that is not a number, an unclosed '[': ValueError)
        except ValueError:
            raise ConfigError(f"{name} is not a valid URL (check its host, port and brackets): "
                              f"{display_url(value)}") from None
    return value


def _db_passwords(db):
    """The password inside a postgresql:// URL as written and decoded (secrets), found even in a URL that does
    not parse."""
    if "://" not in str(db):
        return ()
    from .secrecy import url_passwords
    return url_passwords(db)


def _secrets(name, raw):
    if isinstance(raw, (tuple, list)):
        parts = [str(p).strip() for p in raw]
    else:
        parts = [p.strip() for p in str(raw).split(",")]
    parts = tuple(p for p in parts if p)
    if not parts and str(raw).strip():
        raise ConfigError(f"{name} holds no secret: give one or more, comma-separated")
    return parts


def _whole(minimum):
    def parse(name, raw):
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {str(raw)!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value
    return parse


def _seconds(name, raw):
    try:
        value = float(str(raw).strip().removesuffix("s"))
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {str(raw)!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def _duration(name, raw):
    text = str(raw).strip().lower()
    unit = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], None)
    try:
        value = float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise ConfigError(f"{name} must be a duration such as 300, 30s or 5m, got {str(raw)!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1 second, got {str(raw)!r}")
    return value


def _synchronous(name, raw):
    value = str(raw).strip().upper()
    if value not in ("NORMAL", "FULL"):
        raise ConfigError(f"{name} must be NORMAL or FULL, got {str(raw)!r}")
    return value


def _path(name, raw):
    value = str(raw).strip()
    if not value.startswith("/") or any(c in value for c in " ?#<>:"):
        raise ConfigError(f"{name} must be a URL path starting with '/', got {value!r}")
    return value


def _moment(name, raw):
    value = str(raw).strip()
    if not value:
        return ""
    from .clock import iso, parse_iso
    try:
        return iso(parse_iso(value))
    except ValueError:
        raise ConfigError(f"{name} must be an ISO-8601 time such as 2026-12-01T12:00:00Z, got {value!r}") from None


def _metrics_path(name, raw):
    """`off` (""), `on` ("/metrics"), or the URL path to serve the metrics at."""
    value = str(raw).strip()
    if value.lower() in ("", "off", "no", "false", "0"):
        return ""
    if value.lower() in ("on", "yes", "true", "1"):
        return "/metrics"
    return _path(name, value)


def _address(name, raw):
    """"" or `host:port` (an IPv6 host in brackets: `[::1]:9464`)."""
    value = str(raw).strip()
    if not value:
        return ""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in " /?#@"):
        raise ConfigError(f"{name} must be host:port, e.g. 127.0.0.1:9464, got {value!r}")
    return value


def _url(name, raw):
    value = str(raw).strip().rstrip("/")
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ConfigError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return value


def _target_url(name, raw):
    """An absolute http(s) URL to forward events to; refused in a sentence that never repeats it (it may carry a
    token). Its credentials (user, password, query values) are remembered as secrets at once."""
    value = str(raw).strip()
    if not value:
        return ""
    from urllib.parse import urlsplit
    from .secrecy import remember, url_credentials
    remember(*url_credentials(value))
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a port that is not a number: ValueError)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or _BAD_ESCAPE.search(value):
        raise ConfigError(f"{name} must be an absolute http(s) URL such as http://127.0.0.1:8000/webhooks "
                          f"(the value given is not repeated: it may hold a token)")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting: its `Config` field, environment variable, default, parser, help (the README's table and the
    CLI's `--help` both say it), CLI flag (if any), and whether it is a secret (kept out of `repr` and of the
    receiver's worker processes)."""

    field: str
    env: str
    default: Any
    parse: Callable[[str, Any], Any]
    help: str
    flag: str = ""
    secret: bool = False


#: the local sandbox's port and token: one constant each (the token is not a secret: the sandbox prints it)
SANDBOX_PORT = 8081
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_PASSWORD = "sandbox-password"
SANDBOX_CLIENT_ID = "sandbox-client"  # the sandbox's OAuth app (its client secret is the sandbox's signing secret)  # each sandbox shop's store password, for HTTP Basic (personal use)


SETTINGS = (
    Setting("secrets", "BCHOOKS_SECRET", (), _secrets,
            "Webhook signing secret (your app's client_secret); several, comma-separated, during rotation. "
            "`serve` refuses to start without one.", secret=True),
    Setting("db", "BCHOOKS_DB", "bchooks.db", _store_path,
            "The event store: a SQLite file, or a `postgresql://user@host/db` URL (see docs/postgresql.md).",
            "--db"),
    Setting("pool_size", "BCHOOKS_POOL_SIZE", 10, _whole(1),
            "PostgreSQL: connections per process (each receiver worker, worker, poller)."),
    Setting("host", "BCHOOKS_HOST", "127.0.0.1", _text, "Address the receiver binds to.", "--host"),
    Setting("port", "BCHOOKS_PORT", 8080, _whole(0), "Port the receiver listens on.", "--port"),
    Setting("path", "BCHOOKS_PATH", "/webhook", _path, "URL path that accepts webhook POSTs.", "--path"),
    Setting("workers", "BCHOOKS_WORKERS", 2, _whole(1), "Receiver worker processes.", "--workers"),
    Setting("threads", "BCHOOKS_THREADS", 16, _whole(1),
            "Python threads per worker; above 1, concurrent requests share group commits.", "--threads"),
    Setting("stop_timeout", "BCHOOKS_STOP_TIMEOUT", 10, _whole(1),
            "Seconds a stopping receiver waits for requests in flight (a sender still trickling its body, say) "
            "and their connections before ending its workers."),
    Setting("max_body", "BCHOOKS_MAX_BODY", 1048576, _whole(1), "Largest accepted body in bytes (413 above).",
            "--max-body"),
    Setting("metrics", "BCHOOKS_METRICS", "", _metrics_path,
            "Prometheus metrics of the receiver: `off`, `on` (served at /metrics on the receiver's port) or the "
            "URL path to serve them at (docs/metrics.md).", "--metrics"),
    Setting("metrics_token", "BCHOOKS_METRICS_TOKEN", "", _text,
            "When set, the metrics answer only requests with `Authorization: Bearer <this token>` (401 otherwise).",
            secret=True),
    Setting("metrics_address", "BCHOOKS_METRICS_ADDRESS", "", _address,
            "Serve the metrics on this host:port of their own (from `serve`'s main process) instead of the "
            "receiver's port; turns the metrics on.", "--metrics-address"),
    Setting("synchronous", "BCHOOKS_SYNCHRONOUS", "NORMAL", _synchronous,
            "SQLite `synchronous`: NORMAL (survives crashes) or FULL (also survives power loss).", "--synchronous"),
    Setting("max_db_mb", "BCHOOKS_MAX_DB_MB", 0, _whole(0),
            "Cap on the database file in MiB (0: none). At the cap the receiver answers 503 until space is freed."),
    Setting("busy_timeout", "BCHOOKS_BUSY_TIMEOUT", 5.0, _seconds,
            "Seconds a write waits for a locked database before answering 503."),
    Setting("retry_after", "BCHOOKS_RETRY_AFTER", 5, _whole(0), "`Retry-After` seconds sent with a 503."),
    Setting("api_url", "BCHOOKS_API_URL", "https://api.bigcartel.com", _url,
            "Big Cartel API base (or the sandbox's URL).", "--api-url"),
    Setting("token", "BCHOOKS_TOKEN", "", _text, "API access token (OAuth Bearer token).", "--token", secret=True),
    Setting("account_id", "BCHOOKS_ACCOUNT_ID", "", _text,
            "Big Cartel account id; looked up from /v1/accounts when empty.", "--account-id"),
    Setting("sandbox_token", "BCHOOKS_SANDBOX_TOKEN", SANDBOX_TOKEN, _text,
            "Bearer token the sandbox accepts (it is not a secret: the sandbox prints it).", "--sandbox-token"),
    Setting("handlers", "BCHOOKS_HANDLERS", "", _text,
            "Python module(s) with your `@on(...)` handlers, comma-separated.", "--handlers"),
    Setting("jsonl_path", "BCHOOKS_JSONL_PATH", "", _text,
            "Built-in handler: append every event as a JSON line to this file (off when empty)."),
    Setting("chat_webhook_url", "BCHOOKS_CHAT_WEBHOOK_URL", "", _text,
            "Built-in handler: post new orders to this Slack-compatible webhook URL (off when empty; kept secret).",
            secret=True),
    Setting("receiver_url", "BCHOOKS_RECEIVER_URL", "", _text,
            "Public URL of your receiver, as Big Cartel should call it (default: built from host, port, path)."),
    Setting("client_id", "BCHOOKS_CLIENT_ID", "", _text,
            "Your approved app's client id (`bchooks connect --app`); its client secret is BCHOOKS_SECRET.",
            "--client-id"),
    Setting("authorize_url", "BCHOOKS_AUTHORIZE_URL", "https://my.bigcartel.com/oauth/authorize", _url,
            "Where a shop's owner approves your app (OAuth), or the sandbox's `/oauth/authorize`.",
            "--authorize-url"),
    Setting("shops", "BCHOOKS_SHOPS", "~/.config/bchooks/shops.json", _text,
            "The file of connected shops' credentials (mode 0600; keep it out of any repository).", "--shops-file"),
    Setting("shop_password", "BCHOOKS_SHOP_PASSWORD", "", _text,
            "The store password `bchooks connect --subdomain` checks and keeps (else asked in a terminal; never a "
            "flag, kept secret).", secret=True),
    Setting("poll_every", "BCHOOKS_POLL_EVERY", 300.0, _duration,
            "Seconds between two polls of every shop (`bchooks poll`; `5m`, `30s` work too).", "--every"),
    Setting("poll_lease", "BCHOOKS_POLL_LEASE", 60.0, _duration,
            "Seconds a poller's hold on the shop it polls lasts unless renewed (every third of it, while it polls): "
            "several `bchooks poll` on one store share the shops, and a dead poller's shop is taken over after this.",
            "--lease"),
    Setting("max_retry_after", "BCHOOKS_MAX_RETRY_AFTER", 60.0, _duration,
            "The longest wait an API's `Retry-After` gets honoured (longer: that request fails, the next poll "
            "retries)."),
    Setting("promised_days", "BCHOOKS_PROMISED_DAYS", 3, _whole(0),
            "Days within which the shop promises to ship a paid order: an order unshipped for longer is late "
            "(the fulfilment report, the digest).", "--promised-days"),
    Setting("low_stock", "BCHOOKS_LOW_STOCK", 5, _whole(0),
            "A product option with this many in stock or fewer is low on stock (the catalogue report)."),
    Setting("notify_urls", "BCHOOKS_NOTIFY_URLS", "", _text,
            "Where the digest (and alerts) are sent: apprise URLs separated by spaces or commas (`mailtos://`, "
            "`slack://`, `discord://`, `tgram://`, `ntfy://`...).", secret=True),
    Setting("forward_to", "BCHOOKS_FORWARD_TO", "", _target_url,
            "Where `bchooks forward` (`--to`) and `bchooks listen` (`--forward-to`) send stored events: an http(s) "
            "URL. Its user, password and query are kept secret (never printed, logged or stored).", "--to",
            secret=True),
    Setting("forward_secret", "BCHOOKS_FORWARD_SECRET", "", _text,
            "The target's secret when forwarding re-signs (`--sign bigcartel`: any text, e.g. the client secret "
            "the target verifies with; `--sign standard`: a Standard Webhooks `whsec_...` base64 secret).",
            secret=True),
    Setting("demo_end", "BCHOOKS_DEMO_END", "", _moment,
            "When the demo shop's year of history ends (ISO-8601; default: now). Pin it to get the same demo "
            "bytes every time (the tests and the stored notebooks do)."),
    Setting("alert_every", "BCHOOKS_ALERT_EVERY", 60.0, _duration,
            "Seconds between two evaluations of the alerts (`bchooks watch`, `bchooks worker`; `1m` works too).",
            "--every"),
    Setting("alert_repeat", "BCHOOKS_ALERT_REPEAT", 3600.0, _duration,
            "How often an alert that lasts is sent again (`1h`, `30m`, or seconds)."),
    Setting("alert_quiet", "BCHOOKS_ALERT_QUIET", 86400.0, _duration,
            "A shop with no verified event and no successful poll for this long is quiet: an alert (`24h`, `6h`)."),
    Setting("alert_poll_failures", "BCHOOKS_ALERT_POLL_FAILURES", 3, _whole(1),
            "A shop whose polls failed this many times in a row is an alert (password changed, app deauthorized)."),
    Setting("alert_rejections", "BCHOOKS_ALERT_REJECTIONS", 100, _whole(1),
            "More rejected requests of one reason than this in the last hour is an alert."),
    Setting("alert_store_percent", "BCHOOKS_ALERT_STORE_PERCENT", 90, _whole(1),
            "A store using this percentage of BCHOOKS_MAX_DB_MB or more is an alert (nearly full)."),
    Setting("heartbeat_url", "BCHOOKS_HEARTBEAT_URL", "", _text,
            "A URL fetched (HTTP GET) after each evaluation while no alert is active: a Healthchecks or Uptime Kuma "
            "push URL, so a dead host is noticed from outside (kept secret: it holds a token).", secret=True),
    Setting("archive_dir", "BCHOOKS_ARCHIVE_DIR", "", _text,
            "The folder `bchooks archive` writes to and `bchooks restore` reads from (it must exist): one "
            "sub-folder of Parquet files a run."),
    Setting("retain_days", "BCHOOKS_RETAIN_DAYS", 0, _whole(0),
            "Days of events the store keeps: the worker archives older ones into BCHOOKS_ARCHIVE_DIR "
            "(0: keep all)."),
    Setting("retain_every", "BCHOOKS_RETAIN_EVERY", 3600.0, _duration,
            "How often the worker checks for events older than BCHOOKS_RETAIN_DAYS (`1h`, `10m`...)."),
)


#: what the notebooks fall back to when no BCHOOKS_* variable says otherwise: the local sandbox and the store of
#: the repository's root folder (notebooks run in notebooks/)
SANDBOX_DEFAULTS = {"api_url": f"http://127.0.0.1:{SANDBOX_PORT}", "token": SANDBOX_TOKEN, "db": "../bchooks.db"}
_DEFAULT = {setting.field: setting.default for setting in SETTINGS}
_SECRET = {setting.field for setting in SETTINGS if setting.secret}


def _field(name):
    """A `Config` field whose default is the settings table's (secrets kept out of `repr`)."""
    return field(default=_DEFAULT[name], repr=name not in _SECRET)


def _notify_secrets(text):
    """Each notification URL whole, and its password (its other parts are remembered when it is used:
    `bchooks.notify`)."""
    from urllib.parse import unquote, urlsplit
    found = []
    for url in re.split(r"\s+|,\s*(?=[a-zA-Z][a-zA-Z0-9+.-]*://)", text or ""):
        url = url.strip().rstrip(",")
        if url:
            found.append(url)
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                found.append(unquote(password))
    return found


def _forward_credentials(url):
    """The credentials inside a forwarding target's URL (its host and path stay readable in messages)."""
    if not url:
        return ()
    from .secrecy import url_credentials
    return url_credentials(url)


@dataclass(frozen=True)
class Config:
    secrets: tuple = _field("secrets")
    db: str = _field("db")
    pool_size: int = _field("pool_size")
    host: str = _field("host")
    port: int = _field("port")
    path: str = _field("path")
    workers: int = _field("workers")
    threads: int = _field("threads")
    stop_timeout: int = _field("stop_timeout")
    max_body: int = _field("max_body")
    metrics: str = _field("metrics")
    metrics_token: str = _field("metrics_token")
    metrics_address: str = _field("metrics_address")
    synchronous: str = _field("synchronous")
    max_db_mb: int = _field("max_db_mb")
    busy_timeout: float = _field("busy_timeout")
    retry_after: int = _field("retry_after")
    api_url: str = _field("api_url")
    token: str = _field("token")
    account_id: str = _field("account_id")
    sandbox_token: str = _field("sandbox_token")
    handlers: str = _field("handlers")
    jsonl_path: str = _field("jsonl_path")
    chat_webhook_url: str = _field("chat_webhook_url")
    receiver_url: str = _field("receiver_url")
    client_id: str = _field("client_id")
    authorize_url: str = _field("authorize_url")
    shops: str = _field("shops")
    shop_password: str = _field("shop_password")
    poll_every: float = _field("poll_every")
    poll_lease: float = _field("poll_lease")
    max_retry_after: float = _field("max_retry_after")
    promised_days: int = _field("promised_days")
    low_stock: int = _field("low_stock")
    notify_urls: str = _field("notify_urls")
    forward_to: str = _field("forward_to")
    forward_secret: str = _field("forward_secret")
    demo_end: str = _field("demo_end")
    alert_every: float = _field("alert_every")
    alert_repeat: float = _field("alert_repeat")
    alert_quiet: float = _field("alert_quiet")
    alert_poll_failures: int = _field("alert_poll_failures")
    alert_rejections: int = _field("alert_rejections")
    alert_store_percent: int = _field("alert_store_percent")
    heartbeat_url: str = _field("heartbeat_url")
    archive_dir: str = _field("archive_dir")
    retain_days: int = _field("retain_days")
    retain_every: float = _field("retain_every")

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, defaults: Mapping[str, Any] | None = None,
             **overrides: Any) -> "Config":
        """Explicit `overrides` (None means "not given") win over `env` (default `os.environ`), then `defaults`
        (e.g. `SANDBOX_DEFAULTS`), then the built-in defaults."""
        env = os.environ if env is None else env
        defaults = defaults or {}
        unknown = (set(overrides) | set(defaults)) - {s.field for s in SETTINGS}
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            given = overrides.get(setting.field)
            if given is not None:
                values[setting.field] = setting.parse(setting.flag or setting.field, given)
            elif env.get(setting.env, "").strip():
                values[setting.field] = setting.parse(setting.env, env[setting.env])
            elif setting.field in defaults:
                values[setting.field] = setting.parse(setting.field, defaults[setting.field])
            else:
                values[setting.field] = setting.default
        config = cls(**values)
        from .secrecy import remember
        remember(*config.secret_values())
        return config

    def describe(self) -> str:
        """A few lines saying where things are, for notebooks and logs; secrets only as set or not set."""
        return "\n".join([
            f"API:       {self.api_url}",
            f"receiver:  {self.webhook_url}",
            f"store:     {self.db_display()}",
            f"secret:    {'set' if self.secrets else 'NOT SET (BCHOOKS_SECRET)'}",
            f"token:     {'set' if self.token else 'NOT SET (BCHOOKS_TOKEN)'}",
        ])

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret value (signing secrets, token, chat webhook URL, metrics token, heartbeat URL, the
        database URL's password, notification URLs, the forwarding secret and a forward target's credentials), for
        `secrecy.redact`."""
        return tuple(v for v in (*self.secrets, self.token, self.chat_webhook_url, self.metrics_token,
                                 self.heartbeat_url, *_db_passwords(self.db), *_notify_secrets(self.notify_urls),
                                 self.forward_secret, *_forward_credentials(self.forward_to)) if v)

    def db_display(self) -> str:
        """The store as a person reads it: the SQLite file's full path, or the PostgreSQL URL without password."""
        if is_database_url(self.db):
            from .secrecy import display_url
            return display_url(self.db)
        return os.path.abspath(self.db)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={(self.db_display() if f.name == 'db' and '://' in self.db else getattr(self, f.name))!r}"
                          for f in dataclasses.fields(self) if f.repr)
        return f"Config({shown})"

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    @property
    def webhook_url(self) -> str:
        """The URL the receiver answers on, as senders should call it."""
        if self.receiver_url:
            return self.receiver_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}{self.path}"


#: the environment variables that hold secrets
SECRET_ENV = tuple(s.env for s in SETTINGS if s.secret)
