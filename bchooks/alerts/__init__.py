"""Alerts: told when something breaks or goes quiet, once per incident, again every BCHOOKS_ALERT_REPEAT while
it lasts, and when it is over; through apprise (BCHOOKS_NOTIFY_URLS), never through what failed. A heartbeat URL
is fetched while all is well, so a dead host is noticed from outside. See docs/alerts.md.

    rules.py      the conditions, each read from a few rows of the store
    evaluator.py  one evaluation: incidents opened and ended in the store, what is due sent; `watch`, the loop
    delivery.py   the notification (bounded in time) and the heartbeat's GET

    from bchooks.alerts import Evaluator
    print(Evaluator(store, config).evaluate())
"""

from .evaluator import Evaluation, Evaluator, watch, watch_in_background
from .rules import RULES, Finding, findings

__all__ = ["Evaluation", "Evaluator", "Finding", "RULES", "findings", "watch", "watch_in_background"]
