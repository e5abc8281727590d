"""Processing stored events: your handlers, run durably.

    handlers.py  `@on("order.created")`: registering handlers, the built-in ones (JSON lines, chat)
    worker.py    `bchooks worker`: runs, retries with backoff, dead letters, leases, replay, failures
"""
