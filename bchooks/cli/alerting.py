"""The alert commands: `bchooks watch` (evaluate the alerts on a schedule, or once) and `bchooks alerts` (the
active and recent ones, read-only)."""

import sys

from ..secrecy import printable, redact

from .commands import _check_limit, _config, _open_store, _setup_logging, print_table


def cmd_watch(args):
    import signal
    import threading

    from ..alerts import Evaluator, watch
    config = _config(args)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    _setup_logging()
    with _open_store(config) as store:
        if not args.once:
            print(f"bchooks watch: evaluating the alerts of {store.path} every {config.alert_every:g} s",
                  file=sys.stderr, flush=True)
        last = watch(Evaluator(store, config), config.alert_every, stop, once=args.once,
                     report=(lambda result: print(result, flush=True)) if args.once else None)
    return 1 if args.once and last is not None and (last.send_error or last.store_error) else 0


def cmd_alerts(args):
    config = _config(args)
    _check_limit(args.limit)
    with _open_store(config, create=False) as store:
        active = store.alerts.active()
        recent = [alert for alert in store.alerts.recent(args.limit) if alert["state"] != "active"]
    rows = [("ID", "STATE", "ALERT", "SINCE", "ENDED", "SENT", "MESSAGE")]
    rows += [(str(a["id"]), a["state"], a["key"], a["started_at"][:19], (a["ended_at"] or "-")[:19],
              _sent(a), printable(redact(a["message"]), 100)) for a in [*active, *recent]]
    print_table(rows, "no alerts")
    if active:
        print(f"{len(active)} active")
    return 0


def _sent(alert):
    if alert["last_error"]:
        return "FAILED"
    return f"{alert['sends']}x" if alert["sends"] else "no"
