"""Evaluating the alerts: find what holds now, keep each incident's state in the store, send what is due.

One evaluation: the rules' findings (`rules.findings`); an incident opened for each new key and ended for each key
no longer found; then one notification with every alert due (new, or last sent `BCHOOKS_ALERT_REPEAT` ago) and
every recovery not yet sent. A send is claimed in the store first (two evaluators never send one twice) and given
back when the channel failed, so it is sent at the next evaluation. When the store itself cannot be read or
written, that is an alert too, kept in this process's memory and sent all the same (never through the store).
While no alert is active, the heartbeat URL is fetched.
"""

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..clock import iso
from ..errors import StoreError
from ..secrecy import printable, redact
from . import delivery
from .rules import Finding, findings

log = logging.getLogger("bchooks.alerts")


@dataclass
class Evaluation:
    """What one evaluation found and did."""

    active: list[str] = field(default_factory=list)  # the keys of the active alerts
    opened: int = 0
    ended: int = 0
    sent: int = 0  # alerts and recoveries sent
    send_error: str | None = None
    store_error: str | None = None
    heartbeat: str | None = None  # "sent", "failed: ...", or None (not due or not set)

    def __str__(self) -> str:
        parts = [f"{len(self.active)} active alert(s)" + (f": {', '.join(self.active)}" if self.active else "")]
        if self.opened or self.ended:
            parts.append(f"{self.opened} began, {self.ended} ended")
        if self.sent:
            parts.append(f"{self.sent} sent")
        if self.send_error:
            parts.append(f"not sent ({self.send_error}); trying again at the next evaluation")
        if self.store_error:
            parts.append(f"the store failed: {self.store_error}")
        if self.heartbeat:
            parts.append(f"heartbeat {self.heartbeat}")
        return "; ".join(parts)


class Evaluator:
    """Evaluates the alerts of `store` under `config` (its alert settings, BCHOOKS_NOTIFY_URLS and the heartbeat
    URL). `clock` (unix seconds), `send(urls, title, body)` and `ping(url)` may be replaced (tests)."""

    def __init__(self, store: Any, config: Any, *, clock: Callable[[], float] = time.time,
                 send: delivery.Sender | None = None, ping: Callable[[str], str | None] | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.send = send or delivery.apprise_sender(config.notify_urls)
        self.ping = ping or delivery.ping
        self.host = socket.gethostname()
        self._down: dict | None = None  # the store's own incident, in memory: {"message", "since", "sent_at"}
        self._back: str | None = None  # the store's recovery, until it is sent
        self._warned_unsent = False

    def __repr__(self) -> str:
        return f"Evaluator({self.store!r})"

    def evaluate(self) -> Evaluation:
        """One evaluation; never raises for the store or a channel failing (that is in the result)."""
        moment = datetime.fromtimestamp(self.clock(), timezone.utc)
        now, result = iso(moment), Evaluation()
        try:
            found = findings(self.store, self.config, moment)
            self.store.alerts.check_writable()
            self._record(found, now, result)
            self._send_due(moment, now, result)
            result.active = [alert["key"] for alert in self.store.alerts.active()]
        except StoreError as error:
            result.store_error = printable(redact(str(error)), 300)
            self._store_failed(result.store_error, moment, now, result)
            return result
        if self._down is not None or self._back is not None:
            self._store_back(now, result)
        if not result.active and self._down is None and self.config.heartbeat_url:
            failed = self.ping(self.config.heartbeat_url)
            result.heartbeat = "sent" if failed is None else f"failed: {failed}"
            if failed:
                log.warning("alerts: %s", failed)
        return result

    def _record(self, found: list[Finding], now: str, result: Evaluation) -> None:
        alerts = self.store.alerts
        keys = {finding.key for finding in found}
        for finding in found:
            if alerts.open(finding.key, finding.rule, finding.subject, finding.message, now):
                result.opened += 1
                log.warning("alert %s: %s", finding.key, finding.message)
        for alert in alerts.active():
            if alert["key"] not in keys:
                alerts.end(alert["id"], now)
                result.ended += 1
                log.warning("alert %s is over", alert["key"])

    def _send_due(self, moment: datetime, now: str, result: Evaluation) -> None:
        alerts = self.store.alerts
        due_before = iso(moment - timedelta(seconds=self.config.alert_repeat))
        if not self.config.notify_urls.strip():
            if not self._warned_unsent and alerts.active():
                self._warned_unsent = True
                log.warning("alerts: BCHOOKS_NOTIFY_URLS is not set: alerts are recorded (`bchooks alerts`), "
                            "not sent")
            return
        fired = [a for a in alerts.active() if alerts.claim_send(a["id"], now, due_before)]
        recovered = []
        for alert in alerts.recovered():
            if alert["sent_at"] is None:
                alerts.close(alert["id"])  # (never sent: there is nothing to take back)
            elif alerts.claim_recovery(alert["id"], now):
                recovered.append(alert)
        if not fired and not recovered:
            return
        lines = [f"ALERT {a['key']} (since {a['started_at']}"
                 f"{', again' if a['sent_at'] else ''}): {a['message']}" for a in fired]
        lines += [f"RECOVERED {a['key']} (from {a['started_at']} to {a['ended_at']}): {a['message']}"
                  for a in recovered]
        error = delivery.deliver(self.send, self.config.notify_urls, self._title(fired, recovered),
                                 "\n\n".join(lines) + f"\n\n(bchooks on {self.host}, {now})")
        if error is None:
            result.sent += len(fired) + len(recovered)
            return
        result.send_error = error
        log.warning("alerts: could not send %d alert(s) and %d recovery(ies): %s; trying again at the next "
                    "evaluation", len(fired), len(recovered), error)
        for alert in fired:
            alerts.send_failed(alert["id"], alert["sent_at"], error)
        for alert in recovered:
            alerts.recovery_failed(alert["id"], error)

    @staticmethod
    def _title(fired: list[dict], recovered: list[dict]) -> str:
        if len(fired) + len(recovered) == 1:
            alert = (fired or recovered)[0]
            return f"[bchooks] {'ALERT' if fired else 'RECOVERED'}: {alert['key']}"
        counts = [f"{len(fired)} alert(s)"] if fired else []
        counts += [f"{len(recovered)} recovered"] if recovered else []
        return f"[bchooks] {', '.join(counts)}"

    def _store_failed(self, error: str, moment: datetime, now: str, result: Evaluation) -> None:
        """The store's own incident: kept here, sent straight to the channel (repeated like the others)."""
        if self._down is None:
            self._down = {"since": now, "sent_at": None}
            log.warning("alert store_unavailable: %s", error)
        self._down["message"] = f"the store cannot be read or written: {error}"
        result.active = ["store_unavailable"]
        last = self._down["sent_at"]
        if last is not None and (moment - last).total_seconds() < self.config.alert_repeat:
            return
        if not self.config.notify_urls.strip():
            return
        failed = delivery.deliver(self.send, self.config.notify_urls, "[bchooks] ALERT: store_unavailable",
                                  f"ALERT store_unavailable (since {self._down['since']}): {self._down['message']}"
                                  f"\n\n(bchooks on {self.host}, {now})")
        if failed is None:
            self._down["sent_at"] = moment
            result.sent += 1
        else:
            result.send_error = failed
            log.warning("alerts: could not send store_unavailable: %s; trying again at the next evaluation", failed)

    def _store_back(self, now: str, result: Evaluation) -> None:
        """The store answers again: its incident is over; the recovery is sent (at a later evaluation if the
        channel fails now)."""
        if self._down is not None:
            down, self._down = self._down, None
            log.warning("alert store_unavailable is over")
            if down["sent_at"] is not None:
                self._back = f"RECOVERED store_unavailable (from {down['since']} to {now}): {down['message']}"
        if self._back is None or not self.config.notify_urls.strip():
            return
        failed = delivery.deliver(self.send, self.config.notify_urls, "[bchooks] RECOVERED: store_unavailable",
                                  f"{self._back}\n\n(bchooks on {self.host}, {now})")
        if failed is None:
            self._back = None
            result.sent += 1
        else:
            result.send_error = failed
            log.warning("alerts: could not send the recovery of store_unavailable: %s; trying again at the next "
                        "evaluation", failed)


def watch(evaluator: Evaluator, every: float, stop: threading.Event | None = None, once: bool = False,
          report: Callable[[Evaluation], None] | None = None) -> Evaluation | None:
    """Evaluate every `every` seconds until `stop` is set (or once); `report(Evaluation)` after each. An
    evaluation that fails for any reason is one log line, and the next one comes on time."""
    stop = stop or threading.Event()
    last = None
    while not stop.is_set():
        try:
            last = evaluator.evaluate()
            if report:
                report(last)
        except Exception as error:  # noqa: BLE001 (an alert's defect must never end the process it runs in)
            log.error("alerts: the evaluation failed: %s", printable(redact(f"{type(error).__name__}: {error}"), 300))
        if once or stop.wait(every):
            break
    return last


def watch_in_background(store: Any, config: Any, stop: threading.Event) -> threading.Thread:
    """Evaluate the alerts on a thread of their own until `stop` (the worker's): a slow channel or a failing
    evaluation never holds up the handlers."""
    evaluator = Evaluator(store, config)
    thread = threading.Thread(target=watch, args=(evaluator, config.alert_every, stop), name="bchooks-alerts",
                              daemon=True)
    thread.start()
    return thread
