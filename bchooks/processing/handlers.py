"""Event handlers: a registry (`@on("order.created")`), loading a user's module, and two built-in handlers.

    # myshop/hooks.py, run with: bchooks worker --handlers myshop.hooks
    from bchooks.processing.handlers import on

    @on("order.created", retries=5, retry_delay=10)
    def notify_packing(event):
        order = event.json()["payload"]
        ...

    @on("*")            # every event
    def archive(event):
        ...

A handler gets the `StoredEvent` (id, type, account_id, resource_id, received_at, body; `.json()` parses it).
Raising means failure: the worker retries it on its schedule, then marks it dead.

Own changes: the `order.updated` Big Cartel sends back for a shipment this kit made (`bchooks ship`, the panel, a
handler calling `fulfilment.ship`) is not given to handlers (its run is marked done without running), so a handler
that ships never triggers itself. A handler that wants them too says `@on("order.updated", own_changes=True)` and
can tell them with `bchooks.fulfilment.is_own_change(store, event)`.
"""

import importlib
from collections.abc import Callable
from typing import Any
import importlib.util
import json
import os
import sys
from pathlib import Path
from dataclasses import dataclass

import requests

from ..errors import ConfigError, HandlerError
from ..wire import parse_order

ANY = "*"


@dataclass(frozen=True)
class Handler:
    name: str
    types: tuple
    function: object
    retries: int = 3
    retry_delay: float = 5.0
    retry_backoff: float = 2.0
    own_changes: bool = False  # also run for the echo of the kit's own changes (`fulfilment.is_own_change`)

    def handles(self, event_type):
        return ANY in self.types or event_type in self.types

    def delay(self, attempts):
        """Seconds to wait after the `attempts`-th failed attempt."""
        return self.retry_delay * self.retry_backoff ** (attempts - 1)


class Registry:
    def __init__(self):
        self.handlers = {}

    def __repr__(self):
        return f"Registry({sorted(self.handlers)})"

    def add(self, handler):
        if handler.name in self.handlers:
            raise ConfigError(f"two handlers are named {handler.name!r}: give one another name=")
        self.handlers[handler.name] = handler
        return handler

    def on(self, *types: str, name: str | None = None, retries: int = 3, retry_delay: float = 5.0,
           retry_backoff: float = 2.0, own_changes: bool = False) -> Callable[[Callable], Callable]:
        """Decorator: run the function for events of `types` ("*" for all); `own_changes`: for the echo of the
        kit's own shipments too (skipped by default)."""
        if not types:
            raise ConfigError("@on needs at least one event type, or '*'")

        def register(function):
            self.add(Handler(name or f"{function.__module__}.{function.__qualname__}", tuple(types), function,
                             retries, retry_delay, retry_backoff, own_changes))
            return function
        return register

    def for_type(self, event_type):
        return [h for h in self.handlers.values() if h.handles(event_type)]


#: the registry `@on` fills; user modules import `on` from here
registry = Registry()
on = registry.on


def _import(name):
    """Import a handlers module by name (from the working directory too, as `python -m` would) or by file path."""
    if name.endswith(".py") or os.sep in name:
        path = Path(name).resolve()
        if not path.is_file():
            raise ConfigError(f"no handlers file at {path}")
        spec = importlib.util.spec_from_file_location(f"bchooks_handlers_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return
    if os.getcwd() not in sys.path and "" not in sys.path:  # (the `bchooks` script leaves the folder out)
        sys.path.insert(0, os.getcwd())
    importlib.import_module(name)


def load(module_names: str | None, config: Any = None) -> "Registry":
    """Import the user's handler modules (comma-separated module names, found from the working directory as
    well, or paths of .py files) and add the built-ins the config switches on."""
    for name in [m.strip() for m in (module_names or "").split(",") if m.strip()]:
        try:
            _import(name)
        except ImportError as error:
            raise ConfigError(f"cannot import the handlers module {name!r} (from {os.getcwd()}): {error}") from None
    if config is not None:
        if config.jsonl_path and "bchooks.jsonl" not in registry.handlers:
            registry.add(Handler("bchooks.jsonl", (ANY,), jsonl_writer(config.jsonl_path)))
        if config.chat_webhook_url and "bchooks.chat" not in registry.handlers:
            registry.add(Handler("bchooks.chat", ("order.created",), chat_poster(config.chat_webhook_url)))
    return registry


def jsonl_writer(path):
    """Built-in: append each event as one JSON line (id, received_at, type, account_id, resource_id, body)."""
    def write(event):
        line = json.dumps({"id": event.id, "received_at": event.received_at, "type": event.type,
                           "account_id": event.account_id, "resource_id": event.resource_id, "body": event.json()})
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    return write


def chat_poster(url, timeout=10.0):
    """Built-in: POST a short message for each new order to a Slack-compatible incoming webhook."""
    def post(event):
        parsed = parse_order(event.body)
        order_id, attributes = (parsed[0], parsed[1]) if parsed else (event.resource_id, {})
        name = " ".join(str(attributes.get(k) or "") for k in ("customer_first_name", "customer_last_name")).strip()
        text = f"New order {order_id}: {attributes.get('total', '?')} from {name or 'a customer'}"
        try:  # (requests' own errors name the URL, whose path is the webhook's key: never let it out)
            reply = requests.post(url, json={"text": text}, timeout=timeout)
        except requests.RequestException as error:
            raise HandlerError(f"the chat webhook could not be reached ({type(error).__name__})") from None
        if not reply.ok:
            raise HandlerError(f"the chat webhook answered {reply.status_code} {reply.reason}")
    return post
