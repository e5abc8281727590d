"""`bchooks digest`: the digest of the last week or month, saved as a page and sent (`bchooks.digest`,
`bchooks.notify`)."""

import sys
import tempfile
from pathlib import Path

from ..errors import InputError
from .commands import _config


def _message(made, attached):
    """The message sent: the summary's lines, and the page it comes with."""
    return f"{made.summary.text()}\n\nThe whole digest, with its plots and tables, is attached: {attached}"


def cmd_digest(args):
    """Make the digest (a read: a missing store is one line, never created); save its page to --html (default
    `digest-PERIOD-START.html` here, unless it is only sent); with --send, send its summary with the page
    attached to every BCHOOKS_NOTIFY_URLS place."""
    config = _config(args)
    if args.html and not Path(args.html).absolute().parent.is_dir():
        raise InputError(f"cannot save the digest to {args.html}: no such folder")
    if args.send:
        from ..notify import check_urls
        check_urls(config.notify_urls)  # (before the notebook runs: a URL apprise cannot read stops it at once)
    # papermill's nbformat imports jsonschema, which imports the optional rfc3987_syntax when it is installed: it
    # builds its IRI grammars on import (3 to 10 s here) for format checks nbformat never asks for
    sys.modules.setdefault("rfc3987_syntax", None)
    from ..digest import make_digest
    made = make_digest(config, args.period, args.shop, args.now)
    print(made.summary.text())
    with tempfile.TemporaryDirectory(prefix="bchooks-digest-") as folder:
        path = Path(args.html) if args.html else None if args.send else Path(made.filename)
        saved = made.save(path or Path(folder) / made.filename)
        if path:
            print(f"\nsaved: {path}")
        if args.send:
            from ..notify import send
            reached = send(config.notify_urls, made.title, _message(made, saved.name), attachments=[saved])
            print(f"sent to {', '.join(reached)}")
    return 0
