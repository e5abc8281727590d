"""bchooks: an ops kit for Big Cartel webhooks."""

__version__ = "0.1.0"

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: the flat modules of earlier releases and their home since the packages (importable, with a DeprecationWarning,
#: until the next release; `bchooks.shops` and `bchooks.kit` are packages that export what those modules did)
MOVED = {
    "receiver": "receiving.receiver", "server": "receiving.server", "committer": "receiving.committer",
    "signing": "receiving.signing", "client": "shops.client", "walks": "shops.walks", "oauth": "shops.oauth",
    "poller": "shops.poller", "reconcile": "shops.reconcile", "worker": "processing.worker",
    "handlers": "processing.handlers", "stack": "kit.stack", "devsecret": "kit.devsecret",
}


class _OldPath(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `bchooks.client` (and the other old paths) as the module it became, with a DeprecationWarning."""

    def find_spec(self, name, path=None, target=None):
        old = name.removeprefix(f"{__name__}.")
        if name.startswith(f"{__name__}.") and old in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        new = f"{__name__}.{MOVED[spec.name.removeprefix(f'{__name__}.')]}"
        warnings.warn(f"{spec.name} moved to {new}; the old path goes away in the next release", DeprecationWarning,
                      stacklevel=4)
        module = importlib.import_module(new)
        self._specs = {**getattr(self, "_specs", {}), spec.name: module.__spec__}
        return module

    def exec_module(self, module):
        # (the module it became is already executed; importlib gave it the old name's spec: its own back)
        module.__spec__ = self._specs.pop(module.__spec__.name, module.__spec__)


if not any(isinstance(finder, _OldPath) for finder in sys.meta_path):
    sys.meta_path.append(_OldPath())

from .config import Config
from .errors import BchooksError
from .wire import EVENT_TYPES, Envelope, parse_envelope
from .receiving.signing import Verifier, sign
from .store import EventStore, open_store

__all__ = [
    "__version__", "BchooksError", "Config", "EVENT_TYPES", "Envelope", "EventStore",
    "Verifier", "open_store", "parse_envelope", "sign",
]
