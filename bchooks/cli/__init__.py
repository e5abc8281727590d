"""The `bchooks` command: a thin shell over the library. Every error is one line and a non-zero exit.

    parser.py    the command line (flags of settings made from the settings table)
    commands.py  one function a command: open what it needs, call the library, print what happened
    shops.py     the commands about real shops: connect, shops, disconnect, poll
    stores.py    the commands about the store: check, migrate
    archiving.py archive and restore: old rows into Parquet files and back
    exporting.py the export command: tables as csv, xlsx, parquet, Big Cartel's order CSV
    digest.py    the digest: make it, save it, send it
    forwarding.py  forward and listen: stored events sent on to another URL
    fulfilment.py  ship: orders marked shipped with tracking, one or from a CSV
"""

import sys

from ..errors import BchooksError, ConfigError, InputError, MissingStore
from ..secrecy import printable, redact, redact_log_handlers
from .parser import UsageError, build_parser

__all__ = ["build_parser", "error_line", "exit_code", "main"]


def exit_code(error):
    """The one place errors become exit statuses: 2 for usage, configuration and input (a store path that does not
    exist included), 1 for the rest."""
    return 2 if isinstance(error, (ConfigError, InputError, MissingStore)) else 1


def error_line(error):
    """The one place errors become text: one line, every secret the process knows redacted (whatever produced the
    message: the kit, libpq, an API's answer), no control characters."""
    text = str(error) if isinstance(error, UsageError) else f"bchooks: {error}"
    return printable(redact(text), limit=2000)


def main(argv=None):
    redact_log_handlers()
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "run", None):
            build_parser().print_help()
            return 2
        return args.run(args)
    except BchooksError as error:
        print(error_line(error), file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
