"""bchooks: an ops kit for Big Cartel webhooks."""

__version__ = "0.1.0"

from .config import Config
from .errors import BchooksError
from .wire import EVENT_TYPES, Envelope, parse_envelope
from .signing import Verifier, sign
from .store import EventStore, open_store

__all__ = [
    "__version__", "BchooksError", "Config", "EVENT_TYPES", "Envelope", "EventStore",
    "Verifier", "open_store", "parse_envelope", "sign",
]
