"""`bchooks send`: one signed event to the receiver, by hand: a simulated one of a type, or a body from a file."""

import sys

from ..errors import InputError
from .commands import _config, signing_secret

MAX_FILE = 1024 * 1024  # bytes: a body file larger than this is refused (the receiver's limit is lower still)


def _read_body(path):
    try:
        if path == "-":
            body = sys.stdin.buffer.read(MAX_FILE + 1)
        else:
            with open(path, "rb") as handle:
                body = handle.read(MAX_FILE + 1)
    except OSError as error:
        raise InputError(f"cannot read the body file {path}: {error.strerror or error}") from None
    if len(body) > MAX_FILE:
        raise InputError(f"the body file {path} is larger than {MAX_FILE // 1024} KB")
    if not body.strip():
        raise InputError(f"the body file {path} is empty")
    return body


def cmd_send(args):
    import requests

    from ..simulator.runs import check, direct_shop
    from ..simulator.sending import post_signed
    from ..wire import SIGNATURE_HEADERS
    if args.file and args.type:
        raise InputError("give an event TYPE (a simulated event) or --file BODY.json (its bytes as they are), not both")
    config = _config(args)
    if args.file:
        body = _read_body(args.file)
    else:
        event_type = args.type or "order.created"
        check(event_type, 1, None, args.format)
        body = direct_shop().events(event_type, 1, shape="flat", format=args.format or "docs")[0]
    url = args.to or config.webhook_url
    secret = signing_secret(config)
    with requests.Session() as session:
        attempt = post_signed(session, url, body, secret, header=SIGNATURE_HEADERS[args.format or "docs"])
    if attempt.status is None:
        print(f"bchooks: {url}: {attempt.error}", file=sys.stderr)
        return 1
    if not attempt.ok:
        print(f"bchooks: {url} answered {attempt.status}: {attempt.error}", file=sys.stderr)
        return 1
    print(f"{url}: {attempt.status}, {len(body)} bytes signed with "
          f"{'BCHOOKS_SECRET' if config.secrets else 'the development secret'}")
    return 0
