"""Fulfilment: marking orders shipped with tracking, safely, from the CLI, the panel or a handler.

    shipping.py  `Shipment`, `plan` (what would change, no API call) and `ship` (each attempt recorded in the store
                 before and after the call: a rerun never ships an order twice, a crash mid-batch resumes)
    tracking.py  `read_tracking_csv`: a carrier's or label tool's export (columns matched by header)
    echo.py      `is_own_change` (the `order.updated` the API sends back for our own change) and `client_for`
                 (the API client of the shop an event belongs to, for handlers that act)
    packing.py   packing lists (helper "panel")

See docs/fulfilment.md.
"""

from .echo import client_for, clients_from, is_own_change
from .shipping import ACTIONS, Outcome, Shipment, Step, plan, ship
from .tracking import read_tracking_csv

__all__ = ["ACTIONS", "Outcome", "Shipment", "Step", "client_for", "clients_from", "is_own_change", "plan",
           "read_tracking_csv", "ship"]
