"""The `bchooks` commands: each opens what it needs, calls the library, and prints what happened."""

import json
import logging
import sys

from ..config import SETTINGS, Config
from ..errors import ConfigError, InputError
from ..kit import RUN_DIR

_noted: list[bool] = []


def _kit_defaults(args):
    """Settings of the kit `bchooks dev` runs in this folder, for the commands that talk to a kit, else None.
    They rank below flags and BCHOOKS_* variables; using them is said in one line."""
    if not getattr(args, "uses_kit", False):
        return None
    from ..kit.stack import running_kit
    kit = running_kit(RUN_DIR)
    if kit is None:
        return None
    if not _noted:
        _noted.append(True)
        print(f"bchooks: using the kit `bchooks dev` runs in this folder (pid {kit['supervisor']}): sandbox "
              f"{kit['sandbox_url']}, receiver {kit['receiver_url']}, store {kit['db']}", file=sys.stderr)
    return {field: value for field, value in kit["settings"].items() if field != "port"}


def _config(args, **extra):
    given = {s.field: getattr(args, s.field) for s in SETTINGS if getattr(args, s.field, None) is not None}
    import os

    from ..secrecy import remember, url_passwords
    remember(os.environ.get("BCHOOKS_SHOP_PASSWORD", ""))  # (`connect`'s; redacted from whatever an error says)
    if url_passwords(given.get("db", "")):
        print("bchooks: the password in --db shows in ps: give the URL in BCHOOKS_DB instead", file=sys.stderr)
    return Config.load(defaults=_kit_defaults(args), **given, **extra)


def _token_source(args):
    if getattr(args, "token", None):
        return "the token given with --token"
    import os
    if os.environ.get("BCHOOKS_TOKEN", "").strip():
        return "BCHOOKS_TOKEN"
    return "the sandbox token of the kit running here" if _noted else "BCHOOKS_TOKEN"


def _book(config):
    """The shops file; the passwords and tokens it holds are remembered as secrets (redacted from every message)."""
    from ..secrecy import remember
    from ..shops import ShopBook
    book = ShopBook(config.shops)
    try:
        remember(*(shop.secret for shop in book.shops()))
    except Exception:  # noqa: BLE001 (a file that cannot be read is reported by the command that reads it)
        pass
    return book


def _open_store(config, create=True):
    from ..store import open_store
    return open_store(config, create=create)


def _setup_logging():
    from ..secrecy import redact_log_handlers
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    redact_log_handlers()


def cmd_serve(args):
    from ..receiving.server import serve
    config = _config(args)
    if not config.secrets:
        raise ConfigError("BCHOOKS_SECRET is not set: export your app's client secret (comma-separate several "
                          "during rotation) before `bchooks serve`")
    _setup_logging()
    serve(config, store_events=not args.no_store)
    return 0


def cmd_dev(args):
    from ..kit import Kit
    config = _config(args)
    return Kit(db=config.db, receiver_port=config.port, sandbox_port=args.sandbox_port, lab_port=args.lab_port,
               notebooks=args.notebooks, lab=not args.no_lab, browser=not args.no_browser, shops=args.shop_count,
               history=args.history).run()


def cmd_env(args):
    """Shell lines that point BCHOOKS_* at the kit running in this folder (for scripts and a Python shell)."""
    import shlex

    from ..kit.stack import running_kit
    kit = running_kit(RUN_DIR)
    if kit is None:
        raise InputError("no kit runs in this folder: start one with `bchooks dev` (or `python3 tools/kit.py start`)")
    from ..kit.stack import settings_env
    for name, value in settings_env(kit["settings"]).items():
        print(f"export {name}={shlex.quote(value)}")
    print('export BCHOOKS_SECRET="$(cat .bchooks/dev-secret)"  # the development secret, read from its file')
    return 0


def cmd_stop(args):
    from ..kit.stack import stop_recorded
    names = stop_recorded(RUN_DIR)
    print(f"stopped {', '.join(names)}" if names else f"nothing to stop (no {RUN_DIR}/state.json)")
    return 0


def _check_limit(limit):
    if limit < 1:
        raise InputError(f"--limit must be a whole number of at least 1, got {limit}")


def cmd_events(args):
    config = _config(args)
    _check_limit(args.limit)
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
    print_table(rows, f"no events in {config.db_display()}")
    return 0


def _check_type(event_type, store):
    """An event type is one Big Cartel documents or one the store holds (unknown types are stored too)."""
    from ..wire import EVENT_TYPES
    stored = store.counts_by_type()
    if event_type not in EVENT_TYPES and event_type not in stored:
        known = list(EVENT_TYPES) + sorted(set(stored) - set(EVENT_TYPES))
        raise InputError(f"unknown event type {event_type!r}; known: {', '.join(known)}")


def _check_since(since, flag="--since"):
    """ISO-8601 text as the store and the API write it; `InputError` for anything else (checked before sending)."""
    if since is None:
        return None
    from ..clock import iso, parse_iso
    try:
        return iso(parse_iso(since))
    except ValueError:
        raise InputError(f"{flag} must be an ISO-8601 time such as 2026-11-01T00:00:00Z, got {since!r}") from None


def signing_secret(config, create=False):
    """The first configured secret, else the development secret of the kit of this folder; `create`: make one
    when there is none (for a server that others will sign for: `bchooks sandbox`). A command that signs for a
    receiver started elsewhere cannot guess its secret: it says so, and creates nothing."""
    if config.secrets:
        return config.secrets[0]
    from ..kit.devsecret import DEFAULT_PATH, ensure_dev_secret
    if not create and not DEFAULT_PATH.is_file():
        raise ConfigError("BCHOOKS_SECRET is not set and this folder has no kit (no .bchooks/dev-secret): run this "
                          "in the folder where `bchooks dev` runs, or set BCHOOKS_SECRET to the receiver's secret")
    secret, path = ensure_dev_secret()
    print(f"bchooks: BCHOOKS_SECRET is not set; signing with the development secret in {path}", file=sys.stderr)
    return secret


def _client(config, args=None):
    from ..shops.client import BigCartelClient
    return BigCartelClient.from_config(config, token_source=_token_source(args))


def cmd_sandbox(args):
    import signal
    import threading

    from ..simulator.sandbox import Sandbox, SandboxServer
    config = _config(args)
    schedule = _schedule(args.retry_schedule)
    if not 0 <= args.drop < 1:
        raise ConfigError(f"--drop must be a fraction from 0 to below 1, got {args.drop}")
    sandbox = Sandbox(signing_secret(config, create=True), token=config.sandbox_token, seed=args.seed,
                      shape=args.payload_shape, format=args.format, drop=args.drop, schedule=schedule,
                      shops=args.shop_count, history=args.history, history_end=config.demo_end or None,
                      state=args.state)
    try:
        server = SandboxServer(sandbox, args.host, args.port, bind_wait=5.0)
    except OSError as error:
        sandbox.stop()
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    print(f"bchooks sandbox on {server.url} (API base for BCHOOKS_API_URL); token: {config.sandbox_token}; "
          f"{sandbox.describe()}", file=sys.stderr, flush=True)
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
    from ..simulator.runs import check, send_simulated, trigger_in_sandbox
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
    from ..processing.handlers import load
    from ..processing.worker import Worker
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
        if not args.once:  # (the alerts, on a thread of their own: they never hold up the handlers)
            from ..alerts import watch_in_background
            watch_in_background(store, config, stop)
        worker = Worker(store, registry, lease=args.lease, secrets=config.secret_values())
        print(f"bchooks worker {worker.name}: handlers {', '.join(sorted(registry.handlers))}", file=sys.stderr,
              flush=True)
        reports = []

        def report(burst):
            reports.append(burst)
            print(f"ran {burst.ran} handler run(s): {burst.done} done, {burst.failed} failed (to be retried), "
                  f"{burst.dead} dead", file=sys.stderr, flush=True)
        from ..archives import Retention
        retention = Retention(config)  # (BCHOOKS_RETAIN_DAYS: old events archived once per interval)
        worker.run(poll=poll, stop=stop, once=args.once, report=report,
                   every_pass=None if args.once else retention.tick)
        if args.once and not reports:
            print("nothing was due", file=sys.stderr)
    return 0


def cmd_replay(args):
    from ..processing.worker import replay
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
    from ..processing.worker import failure_count, failures, failures_shown
    config = _config(args)
    _check_limit(args.limit)
    with _open_store(config, create=False) as store:
        rows = failures(store, args.limit, config.secret_values())
        total = failure_count(store)
    print_table([("EVENT", "TYPE", "HANDLER", "STATUS", "ATTEMPTS", "LAST_ERROR")] + [
        (str(r["event_id"]), r["type"], r["handler"], r["status"], str(r["attempts"]), (r["last_error"] or "")[:80])
        for r in rows], "no failed or dead handler runs")
    if rows:
        print(f"{failures_shown(len(rows), total)}, newest first")
    return 0


def cmd_reconcile(args):
    from ..shops.reconcile import reconcile
    args.since = _check_since(args.since)
    config = _config(args)
    connected = _book(config).shops()
    if args.account:
        connected = [s for s in connected if s.account_id == args.account]
        if not connected:
            raise InputError(f"no shop {args.account} is connected (see `bchooks shops`)")
    with _open_store(config) as store:
        if not connected or (config.token and not args.account):  # the token's shop, as before shops existed
            with _client(config, args) as client:
                if client.account_id not in {shop.account_id for shop in connected}:  # (each account once)
                    found = reconcile(store, client, since=args.since)
                    store.polls.record(str(client.account_id), ok=True, missing=found.missing)
                    print(found)
        for shop in connected:  # every connected shop, each against its own orders
            with shop.client() as client:
                found = reconcile(store, client, since=args.since)
                store.polls.record(shop.account_id, ok=True, missing=found.missing)
                print(f"shop {shop.account_id}: {found}")
    return 0


def print_table(rows, empty):
    """A header row and data rows as aligned columns, or the header and `empty` when there are no data rows."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if len(rows) == 1:
        print(f"({empty})")
