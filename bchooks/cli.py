"""The `bchooks` command: a thin shell over the library. Every error is one line and a non-zero exit."""

import argparse
import json
import logging
import sys

from . import __version__
from .config import Config
from .errors import BchooksError, ConfigError


def exit_code(error):
    """The one place errors become exit statuses: 2 for usage and configuration, 1 for the rest."""
    return 2 if isinstance(error, ConfigError) else 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(f"{self.prog}: {message} (see --help)")


def _config(args, **extra):
    fields = ("db", "host", "port", "path", "workers", "max_body", "synchronous", "api_url", "token", "account_id")
    given = {name: getattr(args, name) for name in fields if getattr(args, name, None) is not None}
    return Config.load(**given, **extra)


def _setup_logging():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")


def cmd_serve(args):
    from .server import serve
    config = _config(args)
    if not config.secrets:
        raise ConfigError("BCHOOKS_SECRET is not set: export your app's client secret (comma-separate several "
                          "during rotation) before `bchooks serve`")
    _setup_logging()
    serve(config)
    return 0


def cmd_dev(args):
    from .devsecret import ensure_dev_secret
    from .server import serve
    secret, path = ensure_dev_secret()
    print(f"bchooks: development secret in {path} (readable only by you); senders must sign with it",
          file=sys.stderr)
    config = _config(args).replace(secrets=(secret,))
    _setup_logging()
    serve(config)
    return 0


def cmd_events(args):
    from .store import EventStore
    config = _config(args)
    with EventStore.from_config(config) as store:
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
    print_table(rows)
    if not events:
        print(f"(no events in {config.db})")
    return 0


def print_table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _store_flags(parser):
    parser.add_argument("--db", help="SQLite file of the event store (BCHOOKS_DB, default bchooks.db)")


def _serve_flags(parser):
    _store_flags(parser)
    parser.add_argument("--host", help="bind address (BCHOOKS_HOST, default 127.0.0.1)")
    parser.add_argument("--port", help="port (BCHOOKS_PORT, default 8080)")
    parser.add_argument("--path", help="webhook path (BCHOOKS_PATH, default /webhook)")
    parser.add_argument("--workers", help="worker processes (BCHOOKS_WORKERS, default 2)")
    parser.add_argument("--max-body", dest="max_body", help="largest body in bytes (BCHOOKS_MAX_BODY, default 1 MiB)")
    parser.add_argument("--synchronous", help="SQLite synchronous: NORMAL or FULL (BCHOOKS_SYNCHRONOUS)")


def build_parser():
    parser = _Parser(prog="bchooks", description="Ops kit for Big Cartel webhooks.")
    parser.add_argument("--version", action="version", version=f"bchooks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the webhook receiver (needs BCHOOKS_SECRET)")
    _serve_flags(serve)
    serve.set_defaults(run=cmd_serve)

    dev = commands.add_parser("dev", help="run the receiver with a generated development secret")
    _serve_flags(dev)
    dev.set_defaults(run=cmd_dev)

    events = commands.add_parser("events", help="list stored events, oldest of the newest N first")
    _store_flags(events)
    events.add_argument("--type", help="only events of this type")
    events.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    events.add_argument("--json", action="store_true", help="one JSON object per line, with the body")
    events.set_defaults(run=cmd_events)
    return parser


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "run", None):
            build_parser().print_help()
            return 2
        return args.run(args)
    except BchooksError as error:
        print(f"bchooks: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
