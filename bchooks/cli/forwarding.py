"""`bchooks forward` and `bchooks listen --forward-to`: stored events sent on to another URL (the library:
`bchooks.forwarding`). `forward` only reads the store (a missing one is an error); `listen` keeps its position in
it."""

import sys
import threading

from ..errors import ConfigError, InputError
from .commands import _check_since, _check_type, _config, _open_store

SIGN_HELP = ("how the target can check the events came from you: original (the signature Big Cartel sent, as "
             "stored: the target verifies with your app's client secret; polled events have none), bigcartel "
             "(X-Webhook-Signature made with BCHOOKS_FORWARD_SECRET), standard (Standard Webhooks headers, "
             "BCHOOKS_FORWARD_SECRET a whsec_ secret), none (default original)")
#: failed events named one line each on stderr at most (the summary counts them all)
SHOWN_FAILURES = 20


def add_parsers(commands, settings) -> None:
    """The `forward` and `listen` commands, in the parser's `commands` (`settings`: the parser's helper adding
    setting flags)."""
    from ..forwarding import MODES
    forward = commands.add_parser("forward", help="send stored events (by id, or by --type/--since) to a URL, "
                                  "their exact bytes, re-signed if asked, with retries and a summary")
    forward.add_argument("ids", nargs="*", type=int, help="event ids (see `bchooks events`)")
    forward.add_argument("--type", help="events of this type")
    forward.add_argument("--since", help="events received at or after this ISO time")
    settings(forward, "forward_to", "db", forward_to="where to send the events: an http(s) URL (one holding a "
             "token is better given in the variable: flags show in ps)")
    forward.add_argument("--sign", choices=MODES, default="original", help=SIGN_HELP)
    forward.add_argument("--concurrency", type=int, default=4, help="parallel connections (default 4)")
    forward.add_argument("--retries", type=int, default=3, help="retries of an event that gets no answer, 5xx or "
                         "429 (never other 4xx; default 3)")
    forward.add_argument("--backoff", type=float, default=0.5, help="seconds before the first retry, doubled for "
                             "each next one up to 10 (default 0.5)")
    forward.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")
    forward.set_defaults(run=cmd_forward, uses_kit=True)

    listen = commands.add_parser("listen", help="forward every new event the store commits to a URL (a local "
                                 "app), in order, resuming after a stop, like `stripe listen --forward-to`")
    listen.add_argument("--forward-to", dest="forward_to", metavar="URL", help="where to send the events: an "
                        "http(s) URL, e.g. your app on this machine (BCHOOKS_FORWARD_TO)")
    settings(listen, "db")
    listen.add_argument("--sign", choices=MODES, default="original", help=SIGN_HELP)
    listen.add_argument("--after", type=int, metavar="ID", help="start after this event id (0: every stored "
                        "event) instead of where this URL's listener stopped (a new URL: the newest event now)")
    listen.add_argument("--poll", type=float, default=0.5, help="seconds between looks for new events on SQLite "
                        "(PostgreSQL wakes it at once; default 0.5)")
    listen.add_argument("--backoff", type=float, default=0.5, help="seconds before the first retry while the "
                        "target is down, doubled up to --max-backoff (default 0.5)")
    listen.add_argument("--max-backoff", dest="max_backoff", type=float, default=10.0,
                        help="longest wait between two retries; it retries without end (default 10)")
    listen.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")
    listen.set_defaults(run=cmd_listen, uses_kit=True)


def _target(config, args, retries):
    from ..forwarding import Target, signer
    if not config.forward_to:
        flag = "--forward-to" if args.run is cmd_listen else "--to"
        raise ConfigError(f"say where to send the events: {flag} URL (or BCHOOKS_FORWARD_TO)")
    if args.timeout <= 0 or args.backoff < 0 or getattr(args, "max_backoff", 1) < 0:
        raise InputError("--timeout must be above 0, and --backoff and --max-backoff not negative")
    return Target(config.forward_to, signer(args.sign, config.forward_secret), timeout=args.timeout,
                  retries=retries, backoff=args.backoff, max_backoff=getattr(args, "max_backoff", 10.0))


def cmd_forward(args):
    if not 1 <= args.concurrency <= 64:
        raise InputError(f"--concurrency must be from 1 to 64, got {args.concurrency}")
    if not 0 <= args.retries <= 20:
        raise InputError(f"--retries must be from 0 to 20, got {args.retries}")
    since = _check_since(args.since)
    config = _config(args)
    target = _target(config, args, args.retries)
    from ..forwarding import forward, select
    shown = []

    def progress(delivery):
        if not delivery.ok and len(shown) < SHOWN_FAILURES:
            shown.append(delivery.event_id)
            answer = f"answered {delivery.status}" if delivery.status is not None else delivery.error
            detail = f": {delivery.error}" if delivery.status is not None and delivery.error else ""
            print(f"bchooks: event {delivery.event_id}: {answer}{detail} (after {delivery.attempts} "
                  f"attempt{'s' if delivery.attempts > 1 else ''})", file=sys.stderr, flush=True)
    with _open_store(config, create=False) as store:
        if args.type:
            _check_type(args.type, store)
        summary = forward(select(store, args.ids, type=args.type, since=since), target,
                          concurrency=args.concurrency, progress=progress)
    if not summary.sent:
        print("nothing to forward: no stored event matches")
        return 0
    print(f"{target.shown}: {summary}")
    return 0 if summary.ok == summary.sent else 1


def cmd_listen(args):
    import signal

    from ..forwarding import Listener
    if args.poll <= 0:
        raise InputError(f"--poll must be above 0 seconds, got {args.poll}")
    if args.after is not None and args.after < 0:
        raise InputError(f"--after must be an event id (0 or more), got {args.after}")
    config = _config(args)
    target = _target(config, args, -1)
    _open_store(config, create=False).close()  # (a store that does not exist is an error, never created here)

    def report(event, delivery):
        refused = "" if delivery.ok else f": {delivery.error}" if delivery.status is not None else ""
        said = str(delivery.status) if delivery.sendable else delivery.error
        print(f"{event.id}  {event.type}  -> {said} ({delivery.latency_ms:.0f} ms){refused}", flush=True)
        if not delivery.ok:
            print(f"bchooks listen: event {event.id} was refused and is not retried; send it again with "
                  f"`bchooks forward {event.id}`", file=sys.stderr, flush=True)

    def waiting(event, status, error, wait):
        said = f"answered {status}" if status is not None else error
        print(f"bchooks listen: {target.shown} {said} for event {event.id}; trying again in {wait:g} s",
              file=sys.stderr, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    store = _open_store(config)
    listener = Listener(store, target, poll=args.poll, report=report, waiting=waiting)
    after = listener.start(args.after)
    print(f"bchooks listen: forwarding events after {after} from {store.path} to {target.shown} (signed: "
          f"{args.sign}); Ctrl-C to stop", file=sys.stderr, flush=True)
    failure = []

    def run():
        try:
            listener.run(stop)
        except BaseException as error:  # noqa: BLE001 (said by the main thread, in the CLI's one line)
            failure.append(error)
            stop.set()
    thread = threading.Thread(target=run, name="bchooks-listen", daemon=True)
    thread.start()
    while not stop.wait(0.5):
        pass
    thread.join(timeout=1.0)  # (a request in flight is abandoned: its event is sent again next time)
    if not thread.is_alive():
        store.close()
    if failure:
        raise failure[0]
    return 0
