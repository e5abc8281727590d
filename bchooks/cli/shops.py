"""The `bchooks` commands about real shops: connect (store password or an app's OAuth), list, disconnect, poll."""

import sys

from ..errors import BchooksError, ConfigError, InputError
from .commands import _book, _config, _open_store, _setup_logging, print_table, signing_secret


def cmd_connect(args):
    import getpass

    from ..shops import ShopBook, check_subdomain, connect_basic
    config = _config(args)
    book = ShopBook(config.shops, replace=args.replace)
    book.shops()  # (a shops file it cannot use is said before anything is sent)
    if args.app:
        return _connect_app(args, config, book)
    if not args.subdomain:
        raise InputError("say which shop: --subdomain YOURSHOP (your own shop, with its store password), or --app "
                         "(a shop approving your app)")
    check_subdomain(args.subdomain)
    password = config.shop_password
    if not password:
        if not sys.stdin.isatty():
            raise InputError("give the store password in BCHOOKS_SHOP_PASSWORD (or run this in a terminal to be asked "
                             "for it); it is never taken as a flag, which others could see in ps")
        password = getpass.getpass(f"Password of the store {args.subdomain}: ")
    shop = connect_basic(config.api_url, args.subdomain, password, book)
    print(f"connected shop {shop.account_id} ({shop.store_name or shop.subdomain}) with its store password; kept in "
          f"{book.path}")
    return 0


def _connect_app(args, config, book):
    import webbrowser

    from ..shops.oauth import connect_app
    shop = connect_app(
        config.api_url, config.authorize_url, config.client_id, signing_secret(config), book,
        show=lambda url: print(f"Open this page to approve the app (waiting up to {args.wait:g} s):\n  {url}",
                               file=sys.stderr, flush=True),
        open_url=None if args.no_browser else webbrowser.open, timeout=args.wait)
    print(f"connected shop {shop.account_id} ({shop.store_name or shop.account_id}) to the app; its token kept in "
          f"{book.path}")
    return 0


def cmd_shops(args):
    from ..errors import MissingStore
    from ..secrecy import display_url
    config = _config(args)
    shops = _book(config).shops()  # (read first: a broken shops file is the one line, before the store is opened)
    last, holders = {}, {}
    try:
        with _open_store(config, create=False) as store:
            last = store.cursors.last_polled()
            holders = {row["account_id"]: row["holder"] for row in store.leases.status()}
    except MissingStore:
        pass  # (a read never creates the store)
    rows = [("ACCOUNT", "STORE", "KIND", "SUBDOMAIN", "API_URL", "LAST_POLLED", "POLLED_BY")]
    rows += [(s.account_id, _printable(s.store_name) or "-", s.kind, s.subdomain or "-", display_url(s.api_url),
              last.get(s.account_id, "never"), holders.get(s.account_id) or "-") for s in shops]
    print_table(rows, f"no shop connected (see `bchooks connect`); file {_book(config).path}")
    return 0


def _printable(text):
    """A name from the API on one line: other characters shown escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)[:60]


def cmd_disconnect(args):
    config = _config(args)
    _book(config).remove(args.account)
    print(f"disconnected shop {args.account}: its credentials are gone from {_book(config).path}")
    return 0


def _shops_to_poll(args, config):
    from ..shops import shops_of
    shops = shops_of(config, _book(config))
    if args.account:
        shops = [s for s in shops if s.account_id == args.account]
        if not shops:
            raise InputError(f"no shop {args.account} is connected (see `bchooks shops`)")
    if not shops:
        raise ConfigError("no shop to poll: connect one with `bchooks connect --subdomain YOURSHOP` (or set "
                          "BCHOOKS_TOKEN)")
    return shops


def cmd_poll(args):
    """Poll the shops with any other `bchooks poll` on this store, each taking the next shop due that no other
    holds (`shops.rounds`); the shops file is read again whenever this poller has nothing due (a shop disconnected
    meanwhile is no longer polled); one shop failing never stops the others. With --once: every shop once, then exit
    1 naming the shops that failed."""
    import signal
    import threading

    from ..shops.rounds import Poller
    from . import error_line
    config = _config(args)
    shops = _shops_to_poll(args, config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    _setup_logging()

    def report(outcome):
        print(error_line(outcome) if outcome.failed else outcome, file=sys.stderr, flush=True)

    def refresh():
        nonlocal shops
        try:
            shops = _shops_to_poll(args, config)
        except BchooksError as error:  # (the shops as they were: said, and polled on)
            print(error_line(error), file=sys.stderr, flush=True)
        return shops
    with _open_store(config) as store:
        poller = Poller(store, every=config.poll_every, lease=config.poll_lease, pinned=args.account,
                        max_retry_after=config.max_retry_after)
        if not args.once:
            poller.run(shops, stop=stop, report=report, refresh=refresh)
            return 0
        failed = [outcome.account_id for outcome in poller.run_once(shops, stop=stop, report=report) if outcome.failed]
    if failed:
        print(f"bchooks: {len(failed)} of {len(shops)} shops failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
