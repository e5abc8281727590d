"""The `bchooks` command: a thin shell over the library. Every error is one line and a non-zero exit."""

import argparse
import json
import logging
import sys

from . import __version__
from .config import Config
from .errors import BchooksError, ConfigError, InputError, MissingStore


def exit_code(error):
    """The one place errors become exit statuses: 2 for usage, configuration and input (a store path that does not
    exist included), 1 for the rest."""
    return 2 if isinstance(error, (ConfigError, InputError, MissingStore)) else 1


class UsageError(ConfigError):
    """A command line argparse refused; its message already names the command."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see --help)")


RUN_DIR = ".bchooks/run"  # (kit.RUN_DIR)
_noted = []


def _kit_defaults(args):
    """Settings of the kit `bchooks dev` runs in this folder, for the commands that talk to a kit, else None.
    They rank below flags and BCHOOKS_* variables; using them is said in one line."""
    if not getattr(args, "uses_kit", False):
        return None
    from .stack import running_kit
    kit = running_kit(RUN_DIR)
    if kit is None:
        return None
    if not _noted:
        _noted.append(True)
        print(f"bchooks: using the kit `bchooks dev` runs in this folder (pid {kit['supervisor']}): sandbox "
              f"{kit['sandbox_url']}, receiver {kit['receiver_url']}, store {kit['db']}", file=sys.stderr)
    return {"api_url": kit["sandbox_url"], "token": kit.get("sandbox_token", "sandbox-token"),
            "sandbox_token": kit.get("sandbox_token", "sandbox-token"), "db": kit["db"],
            "receiver_url": kit["receiver_url"]}


def _config(args, **extra):
    fields = ("db", "host", "port", "path", "workers", "threads", "max_body", "synchronous", "api_url", "token",
              "account_id", "sandbox_token", "handlers")
    given = {name: getattr(args, name) for name in fields if getattr(args, name, None) is not None}
    return Config.load(defaults=_kit_defaults(args), **given, **extra)


def _token_source(args):
    if getattr(args, "token", None):
        return "the token given with --token"
    import os
    if os.environ.get("BCHOOKS_TOKEN", "").strip():
        return "BCHOOKS_TOKEN"
    return "the sandbox token of the kit running here" if _noted else "BCHOOKS_TOKEN"


def _open_store(config, create=True):
    from .store import EventStore
    return EventStore.from_config(config, create=create)


def _setup_logging():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")


def cmd_serve(args):
    from .server import serve
    config = _config(args)
    if not config.secrets:
        raise ConfigError("BCHOOKS_SECRET is not set: export your app's client secret (comma-separate several "
                          "during rotation) before `bchooks serve`")
    _setup_logging()
    serve(config, store_events=not args.no_store)
    return 0


def cmd_dev(args):
    from .kit import Kit
    config = _config(args)
    return Kit(db=config.db, receiver_port=config.port, sandbox_port=args.sandbox_port, lab_port=args.lab_port,
               notebooks=args.notebooks, lab=not args.no_lab, browser=not args.no_browser).run()


def cmd_env(args):
    """Shell lines that point BCHOOKS_* at the kit running in this folder (for scripts and a Python shell)."""
    import shlex

    from .stack import running_kit
    kit = running_kit(RUN_DIR)
    if kit is None:
        raise InputError("no kit runs in this folder: start one with `bchooks dev` (or `python3 tools/kit.py start`)")
    values = {"BCHOOKS_API_URL": kit["sandbox_url"], "BCHOOKS_TOKEN": kit.get("sandbox_token", "sandbox-token"),
              "BCHOOKS_DB": kit["db"], "BCHOOKS_RECEIVER_URL": kit["receiver_url"]}
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")
    print('export BCHOOKS_SECRET="$(cat .bchooks/dev-secret)"  # the development secret, read from its file')
    return 0


def cmd_stop(args):
    from .stack import stop_recorded
    names = stop_recorded(RUN_DIR)
    print(f"stopped {', '.join(names)}" if names else f"nothing to stop (no {RUN_DIR}/state.json)")
    return 0


def cmd_events(args):
    config = _config(args)
    if args.limit < 1:
        raise InputError(f"--limit must be a whole number of at least 1, got {args.limit}")
    with _open_store(config, create=False) as store:
        if args.type:
            _check_type(args.type, store)
        events = store.latest(args.limit, type=args.type)[::-1]
    if args.json:
        for event in events:
            print(json.dumps({"id": event.id, "received_at": event.received_at, "type": event.type,
                              "account_id": event.account_id, "resource_id": event.resource_id,
                              "body": json.loads(event.body)}))
        return 0
    rows = [("ID", "RECEIVED_AT", "TYPE", "ACCOUNT", "RESOURCE", "BYTES")]
    rows += [(str(e.id), e.received_at, e.type, e.account_id or "-", e.resource_id or "-", str(len(e.body)))
             for e in events]
    print_table(rows, f"no events in {config.db}")
    return 0


def _check_type(event_type, store):
    """An event type is one Big Cartel documents or one the store holds (unknown types are stored too)."""
    from .wire import EVENT_TYPES
    stored = store.counts_by_type()
    if event_type not in EVENT_TYPES and event_type not in stored:
        known = list(EVENT_TYPES) + sorted(set(stored) - set(EVENT_TYPES))
        raise InputError(f"unknown event type {event_type!r}; known: {', '.join(known)}")


def _check_since(since, flag="--since"):
    """ISO-8601 text as the store and the API write it; `InputError` for anything else (checked before sending)."""
    if since is None:
        return None
    from .clock import iso, parse_iso
    try:
        return iso(parse_iso(since))
    except ValueError:
        raise InputError(f"{flag} must be an ISO-8601 time such as 2026-11-01T00:00:00Z, got {since!r}") from None


def signing_secret(config):
    """The first configured secret, else the development secret (created on first use)."""
    if config.secrets:
        return config.secrets[0]
    from .devsecret import ensure_dev_secret
    secret, path = ensure_dev_secret()
    print(f"bchooks: BCHOOKS_SECRET is not set; signing with the development secret in {path}", file=sys.stderr)
    return secret


def _client(config, args=None):
    from .client import BigCartelClient
    return BigCartelClient.from_config(config, token_source=_token_source(args))


def cmd_sandbox(args):
    import signal
    import threading

    from .simulator.sandbox import Sandbox, SandboxServer
    config = _config(args)
    schedule = _schedule(args.retry_schedule)
    if not 0 <= args.drop < 1:
        raise ConfigError(f"--drop must be a fraction from 0 to below 1, got {args.drop}")
    sandbox = Sandbox(signing_secret(config), token=config.sandbox_token, seed=args.seed, shape=args.payload_shape,
                      format=args.format, drop=args.drop, schedule=schedule)
    try:
        server = SandboxServer(sandbox, args.host, args.port)
    except OSError as error:
        sandbox.stop()
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    print(f"bchooks sandbox on {server.url} (API base for BCHOOKS_API_URL); token: {config.sandbox_token}; "
          f"account {sandbox.shop.account_id}", file=sys.stderr, flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    lost = server.stop()
    if lost:
        print(f"bchooks sandbox: stopped with {len(lost)} deliveries still pending retry; they are lost "
              f"(the sandbox keeps its state in memory)", file=sys.stderr)
    return 0


def _schedule(text):
    try:
        schedule = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--retry-schedule must be comma-separated seconds, got {text!r}") from None
    if any(delay < 0 for delay in schedule):
        raise ConfigError("--retry-schedule delays must not be negative")
    return schedule


def cmd_simulate(args):
    from .simulator.runs import check, send_simulated, trigger_in_sandbox
    config = _config(args)
    check(args.type, args.n, args.shape, args.format)
    if args.via_sandbox:
        events, summary = trigger_in_sandbox(config, args.type, args.n, shape=args.shape, format=args.format,
                                             wait=args.wait)
        print(f"triggered {len(events)} {args.type} event(s) in the sandbox; "
              f"{summary.sent + sum(summary.not_sent.values())} deliveries: {summary}")
        if summary.sent + sum(summary.not_sent.values()) == 0:
            print("bchooks: no webhook is subscribed to that type in the sandbox (see `bchooks register`)",
                  file=sys.stderr)
        return 0 if summary.ok == summary.sent else 1
    from tqdm import tqdm
    config = config.replace(secrets=(signing_secret(config),))
    with tqdm(total=args.n, unit="event", disable=args.n < 50 or None, file=sys.stderr) as bar:
        summary = send_simulated(config, args.type, args.n, seed=args.seed, url=args.to, shape=args.shape or "flat",
                                 format=args.format or "docs", concurrency=args.concurrency, progress=bar.update)
    print(f"{args.to or config.webhook_url}: {summary}")
    return 0 if summary.ok == summary.sent else 1


def cmd_register(args):
    config = _config(args)
    with _client(config, args) as client:
        webhook = client.register_webhook(args.url or config.webhook_url, args.events)
    print(f"registered webhook {webhook.get('id')}: {webhook.get('url')} for {', '.join(webhook.get('events', []))}")
    return 0


def cmd_webhooks(args):
    config = _config(args)
    with _client(config, args) as client:
        webhooks = client.list_webhooks()
    rows = [("ID", "URL", "EVENTS", "CREATED_AT")]
    rows += [(str(w.get("id")), str(w.get("url")), ",".join(w.get("events", [])), str(w.get("created_at", "")))
             for w in webhooks]
    print_table(rows, f"no webhooks registered at {config.api_url}")
    return 0


def cmd_unregister(args):
    config = _config(args)
    if bool(args.id) == bool(args.all):
        raise InputError("give either a webhook ID or --all")
    with _client(config, args) as client:
        if args.all:
            removed = client.unregister_all(url=args.url)
            print(f"unregistered {removed} webhook(s)" + (f" pointing at {args.url}" if args.url else ""))
        else:
            client.unregister_webhook(args.id)
            print(f"unregistered webhook {args.id}")
    return 0


def cmd_worker(args):
    from .handlers import load
    from .worker import Worker
    import signal
    import threading
    config = _config(args)
    registry = load(config.handlers, config)
    if not registry.handlers:
        raise ConfigError("no handlers: pass --handlers your.module (or set BCHOOKS_HANDLERS), or switch on a "
                          "built-in with BCHOOKS_JSONL_PATH or BCHOOKS_CHAT_WEBHOOK_URL")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    poll = float(str(args.poll).removesuffix("s"))
    with _open_store(config) as store:
        worker = Worker(store, registry, lease=args.lease, secrets=config.secret_values())
        print(f"bchooks worker {worker.name}: handlers {', '.join(sorted(registry.handlers))}", file=sys.stderr,
              flush=True)
        reports = []

        def report(burst):
            reports.append(burst)
            print(f"ran {burst.ran} handler run(s): {burst.done} done, {burst.failed} failed (to be retried), "
                  f"{burst.dead} dead", file=sys.stderr, flush=True)
        worker.run(poll=poll, stop=stop, once=args.once, report=report)
        if args.once and not reports:
            print("nothing was due", file=sys.stderr)
    return 0


def cmd_replay(args):
    from .worker import replay
    since = _check_since(args.since)
    with _open_store(_config(args), create=False) as store:
        missing = [i for i in args.ids if store.get(i) is None]
        if missing:
            raise InputError(f"no event {', '.join(map(str, missing))} in the store {store.path}")
        if args.type:
            _check_type(args.type, store)
        count = replay(store, event_ids=args.ids, dead=args.dead, event_type=args.type, since=since)
    print(f"{count} (event, handler) pair(s) back to pending")
    return 0


def cmd_failures(args):
    from .worker import failures
    config = _config(args)
    if args.limit < 1:
        raise InputError(f"--limit must be a whole number of at least 1, got {args.limit}")
    with _open_store(config, create=False) as store:
        rows = failures(store, args.limit, config.secret_values())
    print_table([("EVENT", "TYPE", "HANDLER", "STATUS", "ATTEMPTS", "LAST_ERROR")] + [
        (str(r["event_id"]), r["type"], r["handler"], r["status"], str(r["attempts"]), (r["last_error"] or "")[:80])
        for r in rows], "no failed or dead handler runs")
    return 0


def cmd_reconcile(args):
    from .reconcile import reconcile
    args.since = _check_since(args.since)
    config = _config(args)
    with _open_store(config) as store, _client(config, args) as client:
        print(reconcile(store, client, since=args.since))
    return 0


def print_table(rows, empty):
    """A header row and data rows as aligned columns, or the header and `empty` when there are no data rows."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if len(rows) == 1:
        print(f"({empty})")


def _store_flags(parser):
    parser.add_argument("--db", help="SQLite file of the event store (BCHOOKS_DB, default bchooks.db)")


def _serve_flags(parser):
    _store_flags(parser)
    parser.add_argument("--host", help="bind address (BCHOOKS_HOST, default 127.0.0.1)")
    parser.add_argument("--port", help="port (BCHOOKS_PORT, default 8080)")
    parser.add_argument("--path", help="webhook path (BCHOOKS_PATH, default /webhook)")
    parser.add_argument("--workers", help="worker processes (BCHOOKS_WORKERS, default 2)")
    parser.add_argument("--threads", help="Python threads per worker (BCHOOKS_THREADS, default 16)")
    parser.add_argument("--max-body", dest="max_body", help="largest body in bytes (BCHOOKS_MAX_BODY, default 1 MiB)")
    parser.add_argument("--synchronous", help="SQLite synchronous: NORMAL or FULL (BCHOOKS_SYNCHRONOUS)")


def build_parser():
    parser = _Parser(prog="bchooks", description="Ops kit for Big Cartel webhooks.")
    parser.add_argument("--version", action="version", version=f"bchooks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the webhook receiver (needs BCHOOKS_SECRET)")
    _serve_flags(serve)
    serve.add_argument("--no-store", dest="no_store", action="store_true",
                       help="for benchmarks only: verify and answer, but store nothing")
    serve.set_defaults(run=cmd_serve)

    dev = commands.add_parser("dev", help="the whole kit on embedded defaults: sandbox, receiver, JupyterLab")
    _store_flags(dev)
    dev.add_argument("--port", help="receiver port (BCHOOKS_PORT, default 8080, or a free one)")
    dev.add_argument("--sandbox-port", dest="sandbox_port", type=int, default=8081,
                     help="sandbox port (default 8081, or a free one)")
    dev.add_argument("--lab-port", dest="lab_port", type=int, default=8888,
                     help="JupyterLab port (default 8888, or a free one)")
    dev.add_argument("--notebooks", default="notebooks", help="folder JupyterLab opens (default notebooks)")
    dev.add_argument("--no-browser", dest="no_browser", action="store_true", help="do not open a browser")
    dev.add_argument("--no-lab", dest="no_lab", action="store_true",
                     help="only sandbox and receiver, until Ctrl-C or `bchooks stop`")
    dev.set_defaults(run=cmd_dev)

    env = commands.add_parser("env", help="print export lines pointing BCHOOKS_* at the kit running here: "
                              'eval "$(bchooks env)"')
    env.set_defaults(run=cmd_env)

    stop = commands.add_parser("stop", help="stop what `bchooks dev` started in this folder")
    stop.set_defaults(run=cmd_stop)

    events = commands.add_parser("events", help="list stored events, oldest of the newest N first")
    _store_flags(events)
    events.add_argument("--type", help="only events of this type")
    events.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    events.add_argument("--json", action="store_true", help="one JSON object per line, with the body")
    events.set_defaults(run=cmd_events, uses_kit=True)

    sandbox = commands.add_parser("sandbox", help="run a local Big Cartel (API + signed event delivery)")
    sandbox.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    sandbox.add_argument("--seed", type=int, default=0, help="seed of the simulated shop (default 0)")
    sandbox.add_argument("--payload-shape", dest="payload_shape", choices=("flat", "jsonapi"), default="flat")
    sandbox.add_argument("--format", choices=("docs", "guide"), default="docs",
                         help="envelope and signature header: docs (X-Webhook-Signature) or guide")
    sandbox.add_argument("--sandbox-token", dest="sandbox_token", help="Bearer token to accept "
                         "(BCHOOKS_SANDBOX_TOKEN, default sandbox-token)")
    sandbox.add_argument("--drop", type=float, default=0.0, help="fraction of deliveries to drop on purpose")
    sandbox.add_argument("--retry-schedule", dest="retry_schedule", default="1,5,30",
                         help="seconds between delivery attempts (default 1,5,30)")
    sandbox.set_defaults(run=cmd_sandbox)

    simulate = commands.add_parser("simulate", help="send realistic signed events to a receiver")
    simulate.add_argument("type", help="event type, e.g. order.created")
    simulate.add_argument("-n", type=int, default=1, help="how many events (default 1)")
    simulate.add_argument("--to", help="receiver URL (default: BCHOOKS_RECEIVER_URL or host, port, path)")
    simulate.add_argument("--via-sandbox", dest="via_sandbox", action="store_true",
                          help="let the sandbox at BCHOOKS_API_URL create and deliver the events")
    simulate.add_argument("--seed", type=int, help="seed of the simulated shop: the same seed sends the same events "
                          "(default: a new random shop each run)")
    simulate.add_argument("--shape", choices=("flat", "jsonapi"), help="payload shape (default flat)")
    simulate.add_argument("--format", choices=("docs", "guide"), help="envelope and header (default docs)")
    simulate.add_argument("--concurrency", type=int, default=4, help="parallel connections (default 4)")
    simulate.add_argument("--wait", type=float, default=60.0,
                          help="with --via-sandbox, seconds to wait for deliveries (default 60)")
    _api_flags(simulate)
    simulate.set_defaults(run=cmd_simulate, uses_kit=True)

    register = commands.add_parser("register", help="register a webhook with the API")
    register.add_argument("--url", help="receiver URL (default: BCHOOKS_RECEIVER_URL or host, port, path)")
    register.add_argument("--events", required=True, help="comma-separated event types")
    _api_flags(register)
    register.set_defaults(run=cmd_register, uses_kit=True)

    webhooks = commands.add_parser("webhooks", help="list registered webhooks")
    _api_flags(webhooks)
    webhooks.set_defaults(run=cmd_webhooks, uses_kit=True)

    unregister = commands.add_parser("unregister", help="remove a webhook, or all of them")
    unregister.add_argument("id", nargs="?", help="webhook id")
    unregister.add_argument("--all", action="store_true", help="remove every webhook")
    unregister.add_argument("--url", help="with --all, only webhooks pointing at this URL")
    _api_flags(unregister)
    unregister.set_defaults(run=cmd_unregister, uses_kit=True)

    worker = commands.add_parser("worker", help="run your handlers for stored events, with retries")
    _store_flags(worker)
    worker.add_argument("--handlers", help="module(s) with @on handlers (BCHOOKS_HANDLERS)")
    worker.add_argument("--once", action="store_true", help="process what is due now, then exit")
    worker.add_argument("--poll", default="1s", help="seconds between looks for new events (default 1s)")
    worker.add_argument("--lease", type=float, default=60.0,
                        help="seconds a claimed run may take before another worker may retry it (default 60)")
    worker.set_defaults(run=cmd_worker, uses_kit=True)

    replay = commands.add_parser("replay", help="put events back to pending for their handlers")
    _store_flags(replay)
    replay.add_argument("ids", nargs="*", type=int, help="event ids")
    replay.add_argument("--dead", action="store_true", help="every dead (event, handler) pair")
    replay.add_argument("--type", help="events of this type")
    replay.add_argument("--since", help="events received at or after this ISO time")
    replay.set_defaults(run=cmd_replay, uses_kit=True)

    failures = commands.add_parser("failures", help="failed and dead handler runs with their last error")
    _store_flags(failures)
    failures.add_argument("--limit", type=int, default=50)
    failures.set_defaults(run=cmd_failures, uses_kit=True)

    reconcile = commands.add_parser("reconcile", help="store orders the API has and the store lacks or has older")
    _store_flags(reconcile)
    reconcile.add_argument("--since", help="only orders updated at or after this ISO time")
    _api_flags(reconcile)
    reconcile.set_defaults(run=cmd_reconcile, uses_kit=True)
    return parser


def _api_flags(parser):
    parser.add_argument("--api-url", dest="api_url", help="API base (BCHOOKS_API_URL)")
    parser.add_argument("--token", help="access token (BCHOOKS_TOKEN; prefer the variable: flags show in ps)")
    parser.add_argument("--account-id", dest="account_id", help="account id (BCHOOKS_ACCOUNT_ID)")


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "run", None):
            build_parser().print_help()
            return 2
        return args.run(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return exit_code(error)
    except BchooksError as error:
        print(f"bchooks: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
