"""`bchooks ship`: mark orders shipped with tracking, one (ORDER) or a carrier's CSV (--from), through
`bchooks.fulfilment`. A dry run unless --yes (one order as well as a file): it prints what each order would do."""

import sys

from ..errors import InputError
from .commands import _book, _config, _open_store

DESCRIPTION = ("Mark orders shipped with tracking: one ORDER, or every row of a carrier's or label tool's CSV "
               "(--from). Without --yes nothing is sent: each order's step is printed (would ship, already shipped, "
               "unknown order, in progress). Every shipment is recorded in the store before and after the call, so "
               "a rerun never ships an order twice and an interrupted run resumes.")


def add_parser(commands, settings) -> None:
    """The `ship` command, in the parser's `commands` (`settings`: the parser's helper adding setting flags)."""
    ship = commands.add_parser("ship", help="mark orders shipped with tracking, one or from a CSV (a dry run "
                               "unless --yes)", description=DESCRIPTION)
    ship.add_argument("order", nargs="?", metavar="ORDER", help="the order number (e.g. NGRP-090092)")
    ship.add_argument("--from", dest="csv", metavar="FILE", help="a tracking CSV: order number, carrier, tracking "
                      "number (and URL, shop) columns matched by header (see docs/fulfilment.md)")
    ship.add_argument("--shop", metavar="ACCOUNT", help="the shop's account id (default: the only connected shop)")
    ship.add_argument("--tracking", metavar="N", help="the tracking number (with ORDER)")
    ship.add_argument("--carrier", metavar="C", help="the carrier, e.g. USPS (with ORDER)")
    ship.add_argument("--url", metavar="U", help="the tracking page's URL (with ORDER)")
    ship.add_argument("--items", metavar="LINE:QTY,...", help="ship only these order line items and quantities "
                      "(with ORDER; default every line left)")
    ship.add_argument("--notify", action="store_true", help="have Big Cartel e-mail the customer (with ORDER; in a "
                      "CSV: a Notify column)")
    ship.add_argument("--yes", action="store_true", help="ship (without it: a dry run, nothing is sent)")
    settings(ship, "db", "shops", "api_url", "token", "account_id")
    ship.set_defaults(run=cmd_ship, uses_kit=True)


def _who() -> str:
    import getpass
    import socket
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "bchooks"
    return f"{user}@{socket.gethostname()} (bchooks ship)"


def _shop(args, config) -> str | None:
    """The shop of rows that name none: --shop, else the only connected shop (None when several: a CSV may name
    each row's)."""
    if args.shop:
        return args.shop
    from ..shops import shops_of
    shops = shops_of(config, _book(config))
    if len(shops) == 1:
        return shops[0].account_id
    if not shops:
        raise InputError("no shop is connected: connect one with `bchooks connect --subdomain YOURSHOP`")
    if args.csv:
        return None
    raise InputError(f"say which shop with --shop ACCOUNT: {len(shops)} are connected (see `bchooks shops`)")


def _shipments(args, config):
    from ..fulfilment import Shipment, read_tracking_csv
    from ..fulfilment.tracking import parse_items
    if bool(args.order) == bool(args.csv):
        raise InputError("give one ORDER, or --from FILE (a tracking CSV)")
    if args.csv:
        given = [flag for flag, value in (("--tracking", args.tracking), ("--carrier", args.carrier),
                                          ("--url", args.url), ("--items", args.items), ("--notify", args.notify))
                 if value]
        if given:
            raise InputError(f"{', '.join(given)} go with one ORDER; a CSV gives them per row")
        return read_tracking_csv(args.csv, _shop(args, config))
    if args.url and not args.url.startswith(("http://", "https://")):
        raise InputError("--url must start with http:// or https://")
    return [Shipment(_shop(args, config), args.order.lstrip("#").strip(), args.carrier, args.tracking, args.url,
                     parse_items(args.items or ""), args.notify)]


def _line(*parts: str) -> str:
    from ..secrecy import printable, redact
    return printable(redact("  ".join(parts)), limit=400)


def cmd_ship(args):
    """Print each order's step (a dry run), or with --yes ship them and print each outcome as it comes; a summary
    line last. Exit 1 when one failed, 2 for bad input (a bad CSV row named with its line)."""
    from ..fulfilment import plan, ship
    from ..fulfilment.echo import clients_from
    from ..fulfilment.shipping import summary
    config = _config(args)
    shipments = _shipments(args, config)
    if not shipments:
        raise InputError(f"{args.csv} lists no order")
    with _open_store(config) as store:
        if not args.yes:
            steps = plan(store, shipments)
            for step in steps:
                action = "would ship" if step.action == "ship" else step.action
                print(_line(step.shipment.account_id, step.shipment.order_id, f"{action}: {step.reason}"))
            counts = {action: sum(s.action == action for s in steps) for action in
                      ("ship", "already shipped", "unknown order", "in progress")}
            print(f"dry run: {counts['ship']} would ship, {counts['already shipped']} already shipped, "
                  f"{counts['unknown order']} unknown, {counts['in progress']} in progress (checked with the API "
                  f"when shipping); nothing was sent: add --yes to ship")
            return 0

        def report(outcome):
            print(_line(outcome.shipment.account_id, outcome.shipment.order_id, f"{outcome.status}: "
                        f"{outcome.message}"), flush=True)
        outcomes = ship(store, clients_from(config), shipments, who=_who(), on_outcome=report)
    print(summary(outcomes))
    failed = [o.shipment.order_id for o in outcomes if o.status == "failed"]
    if failed:
        print(f"bchooks: {len(failed)} of {len(outcomes)} failed: {', '.join(failed[:20])}"
              + (" ..." if len(failed) > 20 else ""), file=sys.stderr)
        return 1
    return 0
