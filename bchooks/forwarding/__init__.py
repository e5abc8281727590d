"""Sending stored events on to another URL: `bchooks forward` (a selection, at once) and `bchooks listen
--forward-to` (every new event as it is committed, resuming after a stop). See docs/forwarding.md.

    signatures.py  the signing modes: the original signature, Big Cartel's HMAC, Standard Webhooks, none
    delivery.py    one event to one target: the exact stored bytes, signed, retried while the target is down
    batch.py       a selection (ids, or type and time) with a few connections, and its summary
    listener.py    following the store from the target's position, one event at a time, in order
"""

from .batch import Summary, forward, select
from .delivery import Delivery, Target, deliver, retryable
from .listener import Listener
from .signatures import MODES, signer, webhook_id

__all__ = ["MODES", "Delivery", "Listener", "Summary", "Target", "deliver", "forward", "retryable", "select",
           "signer", "webhook_id"]
