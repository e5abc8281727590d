"""The sandbox's webhook deliveries: background POSTs with a retry schedule, every attempt recorded.

Like Big Cartel (and Svix, Stripe...), a delivery that gets a non-2xx answer or no answer is retried after each
delay in `schedule`, then marked failed. A `drop` fraction is never sent (state "dropped"), to exercise
reconciliation. State is in memory: `stop()` returns the deliveries still pending, so the caller can say so.
"""

import heapq
import itertools
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from concurrent.futures import ThreadPoolExecutor

import requests

from ..clock import iso, now_iso
from ..wire import SIGNATURE_HEADERS
from .sending import post_signed

DEFAULT_SCHEDULE = (1.0, 5.0, 30.0)


class Dispatcher:
    def __init__(self, secret, *, schedule=DEFAULT_SCHEDULE, drop=0.0, seed=0, timeout=5.0, workers=4):
        self._secret = secret
        self.schedule = tuple(float(s) for s in schedule)
        self.drop = float(drop)
        self.timeout = timeout
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._deliveries = {}
        self._due = []  # heap of (monotonic due time, delivery id)
        self._cond = threading.Condition()
        self._stopping = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bchooks-delivery")
        self._local = threading.local()
        self._sessions = []
        self._thread = threading.Thread(target=self._run, name="bchooks-dispatcher", daemon=True)
        self._thread.start()

    def __repr__(self):
        return f"Dispatcher(schedule={self.schedule}, drop={self.drop})"

    def enqueue(self, event_id, event_type, body, webhooks, *, header=SIGNATURE_HEADERS["docs"]):
        """Queue one delivery of `body` to each webhook; returns the delivery ids."""
        ids = []
        with self._cond:
            for webhook in webhooks:
                delivery_id = next(self._ids)
                dropped = self.drop > 0 and self._rng.random() < self.drop
                self._deliveries[delivery_id] = {
                    "id": delivery_id, "event_id": event_id, "type": event_type, "webhook_id": webhook["id"],
                    "url": webhook["url"], "header": header, "state": "dropped" if dropped else "pending",
                    "attempts": [], "next_attempt_at": None if dropped else now_iso(), "_body": body,
                }
                if not dropped:
                    heapq.heappush(self._due, (time.monotonic(), delivery_id))
                ids.append(delivery_id)
            self._cond.notify()
        return ids

    def deliveries(self, *, event_ids=None, state=None):
        with self._cond:
            rows = [d for d in self._deliveries.values()
                    if (event_ids is None or d["event_id"] in event_ids) and (state is None or d["state"] == state)]
            return [{k: (list(v) if k == "attempts" else v) for k, v in d.items() if not k.startswith("_")}
                    for d in rows]

    def counts(self):
        with self._cond:
            counts = {"pending": 0, "delivered": 0, "failed": 0, "dropped": 0}
            for delivery in self._deliveries.values():
                counts[delivery["state"]] += 1
            return counts

    def clear(self):
        with self._cond:
            self._deliveries.clear()
            self._due.clear()

    def stop(self):
        """Stop sending (attempts in flight finish); returns the deliveries that were still pending."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)
        for session in self._sessions:
            session.close()
        return self.deliveries(state="pending")

    def _run(self):
        while True:
            with self._cond:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    self._cond.wait(timeout=None if not self._due else self._due[0][0] - time.monotonic())
                if self._stopping:
                    return
                _, delivery_id = heapq.heappop(self._due)
                delivery = self._deliveries.get(delivery_id)
                if delivery is None or delivery["state"] != "pending":
                    continue
                delivery["next_attempt_at"] = None
            self._pool.submit(self._attempt, delivery)

    def _session(self):
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            with self._cond:
                self._sessions.append(self._local.session)
        return self._local.session

    def _attempt(self, delivery):
        at = now_iso()
        result = post_signed(self._session(), delivery["url"], delivery["_body"], self._secret,
                             header=delivery["header"], timeout=self.timeout)
        with self._cond:
            delivery["attempts"].append({"at": at, "status": result.status, "latency_ms": round(result.latency_ms, 2),
                                         "error": result.error})
            if result.ok:
                delivery["state"] = "delivered"
            elif len(delivery["attempts"]) > len(self.schedule):
                delivery["state"] = "failed"
            else:
                delay = self.schedule[len(delivery["attempts"]) - 1]
                delivery["next_attempt_at"] = iso(datetime.now(timezone.utc) + timedelta(seconds=delay))
                heapq.heappush(self._due, (time.monotonic() + delay, delivery["id"]))
                self._cond.notify()
