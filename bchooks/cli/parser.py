"""The `bchooks` command line: its parser. Every flag of a setting is made from the settings table
(`config.SETTINGS`), so flags, variables and the README's table say the same."""

import argparse
import re

from .. import __version__
from ..config import SANDBOX_PORT, SETTINGS, ConfigError
from . import commands as c
from . import digest as digest_commands
from . import shops as shop_commands
from . import stores as store_commands
from . import sending
from . import alerting, archiving, exporting, forwarding
from . import fulfilment as fulfilment_commands


class UsageError(ConfigError):
    """A command line argparse refused; its message already names the command."""


_REPR = r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
#: argparse's sentences that quote a value given on the command line, and what is said instead (the value could be
#: a password typed as a flag: it is never repeated)
_VALUE_SENTENCES = (
    (re.compile(rf"invalid choice: {_REPR}"), "invalid choice"),
    (re.compile(rf"invalid (\S+) value: {_REPR}"), r"invalid \1 value"),
    (re.compile(rf"ignored explicit argument {_REPR}"), "takes no value"),
    (re.compile(r"ambiguous option: (-[^=\s]*)=\S*"), r"ambiguous option: \1"),
)


def usage_text(message):
    """argparse's `message` without any value given on the command line (only option names are repeated)."""
    if message.startswith("unrecognized arguments: "):
        words = message.removeprefix("unrecognized arguments: ").split()
        flags = [word.split("=", 1)[0] for word in words if word.startswith("-")]
        values = len(words) - len(flags) + sum("=" in word for word in words if word.startswith("-"))
        named = ", ".join(flags)
        hidden = f"{values} value{'s' if values != 1 else ''} (not repeated)" if values else ""
        return f"unrecognized arguments: {' and '.join(part for part in (named, hidden) if part)}"
    for pattern, replacement in _VALUE_SENTENCES:
        message = pattern.sub(replacement, message)
    return message


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {usage_text(message)} (see --help)")


_SETTING = {setting.field: setting for setting in SETTINGS}


def _settings(parser, *fields, **helps):
    """Add the flags of these settings, as the settings table says them (`helps` may replace a flag's help);
    each flag's value is read by `Config.load` like its variable."""
    for name in fields:
        setting = _SETTING[name]
        default = "none" if setting.default in ("", ()) else setting.default
        parser.add_argument(setting.flag, dest=name, metavar=name.upper(),
                            help=f"{helps.get(name, setting.help)} ({setting.env}, default {default})")


def _store_flags(parser):
    _settings(parser, "db")


def _api_flags(parser):
    _settings(parser, "api_url", "token", "account_id",
              token="API access token (prefer the variable: flags show in ps)")


def build_parser():
    parser = _Parser(prog="bchooks", description="Ops kit for Big Cartel webhooks.")
    parser.add_argument("--version", action="version", version=f"bchooks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the webhook receiver (needs BCHOOKS_SECRET)")
    _settings(serve, "db", "host", "port", "path", "workers", "threads", "max_body", "synchronous", "metrics",
              "metrics_address")
    serve.add_argument("--no-store", dest="no_store", action="store_true",
                       help="for benchmarks only: verify and answer, but store nothing")
    serve.set_defaults(run=c.cmd_serve)

    dev = commands.add_parser("dev", help="the whole kit on embedded defaults: sandbox, receiver, JupyterLab")
    _settings(dev, "db", "port", port="Port of the receiver, or a free one when it is taken.")
    dev.add_argument("--sandbox-port", dest="sandbox_port", type=int, default=SANDBOX_PORT,
                     help=f"sandbox port (default {SANDBOX_PORT}, or a free one)")
    dev.add_argument("--lab-port", dest="lab_port", type=int, default=8888,
                     help="JupyterLab port (default 8888, or a free one)")
    dev.add_argument("--notebooks", default="notebooks", help="folder JupyterLab opens (default notebooks)")
    dev.add_argument("--no-browser", dest="no_browser", action="store_true", help="do not open a browser")
    dev.add_argument("--no-lab", dest="no_lab", action="store_true",
                     help="only sandbox and receiver, until Ctrl-C or `bchooks stop`")
    dev.add_argument("--shops", dest="shop_count", type=int, default=1,
                     help="how many sandbox shops (accounts 1234567, 1234568, ...; one currency each; default 1)")
    dev.add_argument("--history", type=int, default=300,
                     help="orders each new sandbox shop took in the year before now (default 300; 0 for none)")
    dev.set_defaults(run=c.cmd_dev)

    env = commands.add_parser("env", help="print export lines pointing BCHOOKS_* at the kit running here: "
                              'eval "$(bchooks env)"')
    env.set_defaults(run=c.cmd_env)

    stop = commands.add_parser("stop", help="stop what `bchooks dev` started in this folder")
    stop.set_defaults(run=c.cmd_stop)

    events = commands.add_parser("events", help="list stored events, oldest of the newest N first")
    _store_flags(events)
    events.add_argument("--type", help="only events of this type")
    events.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    events.add_argument("--json", action="store_true", help="one JSON object per line, with the body")
    events.set_defaults(run=c.cmd_events, uses_kit=True)

    sandbox = commands.add_parser("sandbox", help="run a local Big Cartel (API + signed event delivery)")
    sandbox.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=SANDBOX_PORT, help=f"port (default {SANDBOX_PORT})")
    sandbox.add_argument("--seed", type=int, default=0, help="seed of the simulated shop (default 0)")
    sandbox.add_argument("--payload-shape", dest="payload_shape", choices=("flat", "jsonapi"), default="flat")
    sandbox.add_argument("--format", choices=("docs", "guide"), default="docs",
                         help="envelope and signature header: docs (X-Webhook-Signature) or guide")
    _settings(sandbox, "sandbox_token")
    sandbox.add_argument("--shops", dest="shop_count", type=int, default=1,
                         help="how many shops it serves (accounts 1234567, 1234568, ...; default 1)")
    sandbox.add_argument("--history", type=int, default=0,
                         help="orders each shop took in the year before now, served by its API (default 0)")
    sandbox.add_argument("--state", help="JSON file to keep shops, webhooks and tokens in across restarts")
    sandbox.add_argument("--drop", type=float, default=0.0, help="fraction of deliveries to drop on purpose")
    sandbox.add_argument("--retry-schedule", dest="retry_schedule", default="1,5,30",
                         help="seconds between delivery attempts (default 1,5,30)")
    sandbox.set_defaults(run=c.cmd_sandbox)

    simulate = commands.add_parser("simulate", help="send realistic signed events to a receiver")
    simulate.add_argument("type", help="event type, e.g. order.created")
    simulate.add_argument("-n", type=int, default=1, help="how many events (default 1)")
    simulate.add_argument("--to", help="receiver URL (default: BCHOOKS_RECEIVER_URL or host, port, path)")
    simulate.add_argument("--via-sandbox", dest="via_sandbox", action="store_true",
                          help="let the sandbox at BCHOOKS_API_URL create and deliver the events")
    simulate.add_argument("--seed", type=int, help="seed of the simulated shop: the same seed, the same customers, "
                          "products and amounts (default: a new random shop each run)")
    simulate.add_argument("--shape", choices=("flat", "jsonapi"), help="payload shape (default flat)")
    simulate.add_argument("--format", choices=("docs", "guide"), help="envelope and header (default docs)")
    simulate.add_argument("--concurrency", type=int, default=4, help="parallel connections (default 4)")
    simulate.add_argument("--wait", type=float, default=60.0,
                          help="with --via-sandbox, seconds to wait for deliveries (default 60)")
    _api_flags(simulate)
    simulate.set_defaults(run=c.cmd_simulate, uses_kit=True)

    send = commands.add_parser("send", help="sign one event with the kit's secret and post it to the receiver: a "
                               "simulated one of TYPE, or a body file as it is")
    send.add_argument("type", nargs="?", help="event type of a simulated event (default order.created)")
    send.add_argument("--file", help="a JSON body to send byte for byte ('-': standard input)")
    send.add_argument("--to", help="receiver URL (default: BCHOOKS_RECEIVER_URL or host, port, path)")
    send.add_argument("--format", choices=("docs", "guide"), help="envelope and header (default docs)")
    _api_flags(send)
    send.set_defaults(run=sending.cmd_send, uses_kit=True)

    register = commands.add_parser("register", help="register a webhook with the API")
    register.add_argument("--url", help="receiver URL (default: BCHOOKS_RECEIVER_URL or host, port, path)")
    register.add_argument("--events", required=True, help="comma-separated event types")
    _api_flags(register)
    register.set_defaults(run=c.cmd_register, uses_kit=True)

    webhooks = commands.add_parser("webhooks", help="list registered webhooks")
    _api_flags(webhooks)
    webhooks.set_defaults(run=c.cmd_webhooks, uses_kit=True)

    unregister = commands.add_parser("unregister", help="remove a webhook, or all of them")
    unregister.add_argument("id", nargs="?", help="webhook id")
    unregister.add_argument("--all", action="store_true", help="remove every webhook")
    unregister.add_argument("--url", help="with --all, only webhooks pointing at this URL")
    _api_flags(unregister)
    unregister.set_defaults(run=c.cmd_unregister, uses_kit=True)

    worker = commands.add_parser("worker", help="run your handlers for stored events, with retries")
    _store_flags(worker)
    _settings(worker, "handlers")
    worker.add_argument("--once", action="store_true", help="process what is due now, then exit")
    worker.add_argument("--poll", default="1s", help="seconds between looks for new events (default 1s)")
    worker.add_argument("--lease", type=float, default=60.0,
                        help="seconds a claimed run may take before another worker may retry it (default 60)")
    worker.set_defaults(run=c.cmd_worker, uses_kit=True)

    replay = commands.add_parser("replay", help="put events back to pending for their handlers")
    _store_flags(replay)
    replay.add_argument("ids", nargs="*", type=int, help="event ids")
    replay.add_argument("--dead", action="store_true", help="every dead (event, handler) pair")
    replay.add_argument("--type", help="events of this type")
    replay.add_argument("--since", help="events received at or after this ISO time")
    replay.set_defaults(run=c.cmd_replay, uses_kit=True)

    failures = commands.add_parser("failures", help="failed and dead handler runs with their last error")
    _store_flags(failures)
    failures.add_argument("--limit", type=int, default=50)
    failures.set_defaults(run=c.cmd_failures, uses_kit=True)

    reconcile = commands.add_parser("reconcile", help="store orders the API has and the store lacks or has older")
    _store_flags(reconcile)
    reconcile.add_argument("--since", help="only orders updated at or after this ISO time")
    reconcile.add_argument("--account", help="only this connected shop (default: every connected shop, and the "
                           "shop of BCHOOKS_TOKEN)")
    _settings(reconcile, "shops")
    _api_flags(reconcile)
    reconcile.set_defaults(run=c.cmd_reconcile, uses_kit=True)

    connect = commands.add_parser("connect", help="connect a shop with its subdomain and store password "
                                  "(password from BCHOOKS_SHOP_PASSWORD, or asked)")
    connect.add_argument("--subdomain", help="your own shop: its subdomain (yourshop of yourshop.bigcartel.com)")
    connect.add_argument("--app", action="store_true", help="a shop approving your app (OAuth): prints the page to "
                         "open, waits for the approval on 127.0.0.1")
    connect.add_argument("--no-browser", dest="no_browser", action="store_true", help="with --app, only print the URL")
    connect.add_argument("--wait", type=float, default=300.0, help="with --app, seconds to wait (default 300)")
    connect.add_argument("--replace", action="store_true", help="replace another shop kept under the same account id")
    _settings(connect, "api_url", "shops", "client_id", "authorize_url")
    connect.set_defaults(run=shop_commands.cmd_connect, uses_kit=True)

    shops = commands.add_parser("shops", help="the connected shops (never their credentials) and when each was polled")
    _settings(shops, "shops", "db")
    shops.set_defaults(run=shop_commands.cmd_shops, uses_kit=True)

    disconnect = commands.add_parser("disconnect", help="forget a connected shop's credentials")
    disconnect.add_argument("account", help="account id (see `bchooks shops`)")
    _settings(disconnect, "shops")
    disconnect.set_defaults(run=shop_commands.cmd_disconnect, uses_kit=True)

    poll = commands.add_parser("poll", help="store every connected shop's new and changed orders and products as "
                               "events, every few minutes (or --once)")
    _settings(poll, "db", "shops", "poll_every", "poll_lease", "api_url", "token", "account_id")
    poll.add_argument("--once", action="store_true", help="poll every shop once, then exit")
    poll.add_argument("--account", help="only this shop")
    poll.set_defaults(run=shop_commands.cmd_poll, uses_kit=True)

    check = commands.add_parser("check", help="which store the settings name: engine, schema version, events")
    _settings(check, "db")
    check.set_defaults(run=store_commands.cmd_check, uses_kit=True)

    migrate = commands.add_parser("migrate", help="copy a store into another (SQLite to PostgreSQL, or back): every "
                                  "event byte for byte, with rejections, runs and reconciliations; resumable")
    migrate.add_argument("--from", dest="source", metavar="DB", help="the store to copy: a SQLite file or URL "
                         "(default: BCHOOKS_DB, which keeps a URL's password out of ps)")
    migrate.add_argument("--to", dest="target", metavar="DB", help="the store to fill, created if needed "
                         "(default: BCHOOKS_MIGRATE_TO, which keeps a URL's password out of ps)")
    migrate.add_argument("--batch", type=int, default=2000, help="events a transaction (default 2000)")
    migrate.set_defaults(run=store_commands.cmd_migrate)

    watch = commands.add_parser("watch", help="evaluate the alerts every BCHOOKS_ALERT_EVERY seconds until stopped "
                                "(or --once): send what broke or went quiet to BCHOOKS_NOTIFY_URLS, ping the heartbeat")
    _settings(watch, "db", "alert_every")
    watch.add_argument("--once", action="store_true", help="evaluate once, print what was found, then exit")
    watch.set_defaults(run=alerting.cmd_watch, uses_kit=True)

    alerts = commands.add_parser("alerts", help="the active alerts and the recent ones (read-only)")
    _store_flags(alerts)
    alerts.add_argument("--limit", type=int, default=20, help="how many recent ones besides the active (default 20)")
    alerts.set_defaults(run=alerting.cmd_alerts, uses_kit=True)

    exporting.add_parser(commands, _settings)
    forwarding.add_parsers(commands, _settings)
    archiving.add_parser(commands, _settings)
    fulfilment_commands.add_parser(commands, _settings)
    digest = commands.add_parser("digest", help="how the last week (or month) went: a page with plots (a notebook "
                                 "run headless) and, with --send, a few lines sent with it to BCHOOKS_NOTIFY_URLS")
    _settings(digest, "db", "promised_days")
    digest.add_argument("--period", choices=("week", "month"), default="week",
                        help="the last whole calendar week (from Monday, UTC) or month before --now (default week)")
    digest.add_argument("--shop", metavar="ACCOUNT", help="only this shop's orders (default: every shop in the store)")
    digest.add_argument("--html", metavar="FILE", help="where to save the page (default digest-PERIOD-START.html "
                        "here; with --send and no --html, only attached)")
    digest.add_argument("--send", action="store_true", help="send the summary, the page attached, to every "
                        "apprise URL in BCHOOKS_NOTIFY_URLS (e-mail, Slack, ntfy...)")
    digest.add_argument("--now", metavar="TIME", help="when the digest is made, ISO-8601 (default now)")
    digest.set_defaults(run=digest_commands.cmd_digest, uses_kit=True)
    return parser




