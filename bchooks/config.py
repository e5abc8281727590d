"""One `Config`, read from explicit arguments, then `BCHOOKS_*` environment variables, then defaults.

Settings are data (`SETTINGS`): the README's configuration table and its test are checked against it.
Secrets (`secrets`, `token`) never appear in `repr`.
"""

import dataclasses
import os
from dataclasses import dataclass, field

from .errors import ConfigError


def _text(name, raw):
    return raw.strip()


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


def _url(name, raw):
    value = str(raw).strip().rstrip("/")
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ConfigError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return value


@dataclass(frozen=True)
class Setting:
    field: str
    env: str
    default: object
    parse: object
    help: str
    flag: str = ""


SETTINGS = (
    Setting("secrets", "BCHOOKS_SECRET", (), _secrets,
            "Webhook signing secret (your app's client_secret); several, comma-separated, during rotation. "
            "`serve` refuses to start without one."),
    Setting("db", "BCHOOKS_DB", "bchooks.db", _text, "SQLite file of the event store.", "--db"),
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
    Setting("synchronous", "BCHOOKS_SYNCHRONOUS", "NORMAL", _synchronous,
            "SQLite `synchronous`: NORMAL (survives crashes) or FULL (also survives power loss).", "--synchronous"),
    Setting("max_db_mb", "BCHOOKS_MAX_DB_MB", 0, _whole(0),
            "Cap on the database file in MiB (0: none). At the cap the receiver answers 503 until space is freed."),
    Setting("busy_timeout", "BCHOOKS_BUSY_TIMEOUT", 5.0, _seconds,
            "Seconds a write waits for a locked database before answering 503."),
    Setting("retry_after", "BCHOOKS_RETRY_AFTER", 5, _whole(0), "`Retry-After` seconds sent with a 503."),
    Setting("api_url", "BCHOOKS_API_URL", "https://api.bigcartel.com", _url,
            "Big Cartel API base (or the sandbox's URL).", "--api-url"),
    Setting("token", "BCHOOKS_TOKEN", "", _text, "API access token (OAuth Bearer token).", "--token"),
    Setting("account_id", "BCHOOKS_ACCOUNT_ID", "", _text,
            "Big Cartel account id; looked up from /v1/accounts when empty.", "--account-id"),
    Setting("sandbox_token", "BCHOOKS_SANDBOX_TOKEN", "sandbox-token", _text,
            "Bearer token the sandbox accepts (it is not a secret: the sandbox prints it).", "--sandbox-token"),
    Setting("handlers", "BCHOOKS_HANDLERS", "", _text,
            "Python module(s) with your `@on(...)` handlers, comma-separated.", "--handlers"),
    Setting("jsonl_path", "BCHOOKS_JSONL_PATH", "", _text,
            "Built-in handler: append every event as a JSON line to this file (off when empty)."),
    Setting("chat_webhook_url", "BCHOOKS_CHAT_WEBHOOK_URL", "", _text,
            "Built-in handler: post new orders to this Slack-compatible webhook URL (off when empty; kept secret)."),
    Setting("receiver_url", "BCHOOKS_RECEIVER_URL", "", _text,
            "Public URL of your receiver, as Big Cartel should call it (default: built from host, port, path)."),
    Setting("demo_end", "BCHOOKS_DEMO_END", "", _moment,
            "When the demo shop's year of history ends (ISO-8601; default: now). Pin it to get the same demo "
            "bytes every time (the tests and the stored notebooks do)."),
)


#: what the notebooks fall back to when no BCHOOKS_* variable says otherwise: the local sandbox and the store of
#: the repository's root folder (notebooks run in notebooks/)
SANDBOX_DEFAULTS = {"api_url": "http://127.0.0.1:8081", "token": "sandbox-token", "db": "../bchooks.db"}


@dataclass(frozen=True)
class Config:
    secrets: tuple = field(default=(), repr=False)
    db: str = "bchooks.db"
    host: str = "127.0.0.1"
    port: int = 8080
    path: str = "/webhook"
    workers: int = 2
    threads: int = 16
    stop_timeout: int = 10
    max_body: int = 1048576
    synchronous: str = "NORMAL"
    max_db_mb: int = 0
    busy_timeout: float = 5.0
    retry_after: int = 5
    api_url: str = "https://api.bigcartel.com"
    token: str = field(default="", repr=False)
    account_id: str = ""
    sandbox_token: str = "sandbox-token"
    handlers: str = ""
    jsonl_path: str = ""
    chat_webhook_url: str = field(default="", repr=False)
    receiver_url: str = ""
    demo_end: str = ""

    @classmethod
    def load(cls, env=None, defaults=None, **overrides):
        """Explicit `overrides` (None means "not given") win over `env` (default `os.environ`), then `defaults`
        (e.g. `SANDBOX_DEFAULTS`), then the built-in defaults."""
        env = os.environ if env is None else env
        defaults = defaults or {}
        unknown = (set(overrides) | set(defaults)) - {s.field for s in SETTINGS}
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        values = {}
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
        return cls(**values)

    def describe(self):
        """A few lines saying where things are, for notebooks and logs; secrets only as set or not set."""
        return "\n".join([
            f"API:       {self.api_url}",
            f"receiver:  {self.webhook_url}",
            f"store:     {os.path.abspath(self.db)}",
            f"secret:    {'set' if self.secrets else 'NOT SET (BCHOOKS_SECRET)'}",
            f"token:     {'set' if self.token else 'NOT SET (BCHOOKS_TOKEN)'}",
        ])

    def secret_values(self):
        """Every configured secret value (signing secrets, token, chat webhook URL), for `secrecy.redact`."""
        return tuple(v for v in (*self.secrets, self.token, self.chat_webhook_url) if v)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def webhook_url(self):
        """The URL the receiver answers on, as senders should call it."""
        if self.receiver_url:
            return self.receiver_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}{self.path}"


#: the environment variables that hold secrets: those of the settings kept out of `repr`
SECRET_ENV = tuple(s.env for s in SETTINGS if not Config.__dataclass_fields__[s.field].repr)
