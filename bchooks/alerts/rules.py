"""The alert rules: each reads a few rows of the store (index seeks, per-minute counts, one row a shop) and says
which conditions hold now, as `Finding`s. A finding's `key` names one incident: the same key at the next
evaluation is the same incident going on; a key no longer found is an incident over.

    dead_runs        any handler run is dead (its retries used up)
    rejections       more than BCHOOKS_ALERT_REJECTIONS requests of one reason rejected in the last hour
    quiet            a shop with no verified event and no successful poll for BCHOOKS_ALERT_QUIET
    poll_failing     a shop whose last BCHOOKS_ALERT_POLL_FAILURES polls (or more) failed in a row
    missing_orders   the last reconcile of a shop found orders the store lacked
    store_size       the store uses BCHOOKS_ALERT_STORE_PERCENT of BCHOOKS_MAX_DB_MB or more

(The store refusing writes is found by the evaluator itself: its own writes fail.)
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..clock import iso, parse_iso

REJECTION_WINDOW = timedelta(hours=1)
RULES = ("dead_runs", "rejections", "quiet", "poll_failing", "missing_orders", "store_size", "store_unavailable")


@dataclass(frozen=True)
class Finding:
    """A condition that holds now: its incident's key, rule, subject (a shop, a reason) and what to say."""

    key: str
    rule: str
    subject: str | None
    message: str


def span(seconds: float) -> str:
    """A duration as a person says it: 45 s, 12 min, 3.5 h, 2.0 days."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def dead_runs(store: Any, config: Any, now: datetime) -> list[Finding]:
    count = store.runs.count("dead")
    if not count:
        return []
    return [Finding("dead_runs", "dead_runs", None,
                    f"{count} handler run(s) are dead (their retries are used up): see `bchooks failures`, fix the "
                    f"handler, then `bchooks replay --dead`")]


def rejections(store: Any, config: Any, now: datetime) -> list[Finding]:
    counts = store.rejection_counts(since=iso(now - REJECTION_WINDOW))
    return [Finding(f"rejections:{reason}", "rejections", reason,
                    f"{count} requests rejected as {reason} in the last hour (more than {config.alert_rejections}): "
                    f"see `bchooks rejections`")
            for reason, count in sorted(counts.items()) if count > config.alert_rejections]


def _shop(account: str, names: dict) -> str:
    return f"shop {account} ({names[account]})" if names.get(account) else f"shop {account}"


def quiet(store: Any, config: Any, now: datetime, polls: list[dict], names: dict) -> list[Finding]:
    latest: dict[str, str] = {account: received for account, (_, received) in store.last_event_by_shop().items()}
    for row in polls:
        success = row["last_success_at"]
        if success and success > latest.get(row["account_id"], ""):
            latest[row["account_id"]] = success
    found = []
    for account, moment in sorted(latest.items()):
        age = (now - parse_iso(moment)).total_seconds()
        if age >= config.alert_quiet:
            found.append(Finding(f"quiet:{account}", "quiet", account,
                                 f"{_shop(account, names)}: no verified event and no successful poll for {span(age)} "
                                 f"(since {moment}): is the receiver reachable, the webhook registered, the poller "
                                 f"running?"))
    return found


def poll_failing(store: Any, config: Any, now: datetime, polls: list[dict], names: dict) -> list[Finding]:
    return [Finding(f"poll_failing:{row['account_id']}", "poll_failing", row["account_id"],
                    f"{_shop(row['account_id'], names)}: its last {row['failures']} polls failed (the last at "
                    f"{row['last_attempt_at']}: {row['last_error'] or 'no error said'}); a changed store password or "
                    f"an app deauthorized needs `bchooks connect` again")
            for row in polls if row["failures"] >= config.alert_poll_failures]


def missing_orders(store: Any, config: Any, now: datetime, polls: list[dict], names: dict) -> list[Finding]:
    return [Finding(f"missing_orders:{row['account_id']}", "missing_orders", row["account_id"],
                    f"{_shop(row['account_id'], names)}: the last reconcile found {row['missing']} order(s) the store "
                    f"lacked (now stored from the API): events are not all reaching the receiver")
            for row in polls if row["missing"]]


def store_size(store: Any, config: Any, now: datetime) -> list[Finding]:
    if not config.max_db_mb:
        return []
    used = store.alerts.size_bytes()
    percent = 100 * used / (config.max_db_mb * 2 ** 20)
    if percent < config.alert_store_percent:
        return []
    return [Finding("store_size", "store_size", None,
                    f"the store uses {used / 2 ** 20:.1f} MiB of its {config.max_db_mb} MiB cap ({percent:.0f}%): at "
                    f"the cap the receiver answers 503 to every event; free space or raise BCHOOKS_MAX_DB_MB")]


def findings(store: Any, config: Any, now: datetime) -> list[Finding]:
    """Every condition that holds at `now` (an aware datetime), by rule."""
    polls = store.polls.status()
    names = store.cursors.shop_names()
    found = [*dead_runs(store, config, now), *rejections(store, config, now)]
    for rule in (quiet, poll_failing, missing_orders):
        found += rule(store, config, now, polls, names)
    return found + store_size(store, config, now)
