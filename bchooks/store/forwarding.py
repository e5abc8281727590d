"""Forwarding positions in the store: per target, the newest event `bchooks listen --forward-to` delivered there.

Events are delivered one at a time in id order, and a position moves only after its event was answered, so every
event up to it has been delivered at least once: a listener stopped (or killed) at any moment starts again after it.
A target is named by its URL without credentials or query (`forwarding.target_key`): no secret is stored.
"""

from ..clock import now_iso
from .interface import StorePart


class ForwardingPositions(StorePart):
    def position(self, target: str) -> int | None:
        """The newest event id delivered to `target`, or None before its first listener started."""
        rows = self.store._read("SELECT last_id FROM forwarding_positions WHERE target = ?", (target,))
        return int(rows[0][0]) if rows else None

    def start(self, target: str, after_id: int) -> int:
        """The position of `target`, made `after_id` first if it has none (a new target starts there; a known one
        goes on where it was)."""
        self.store.write_one("INSERT INTO forwarding_positions (target, last_id, forwarded, updated_at)"
                             " VALUES (?, ?, 0, ?) ON CONFLICT (target) DO NOTHING", (target, after_id, now_iso()))
        position = self.position(target)
        return after_id if position is None else position

    def reset(self, target: str, after_id: int) -> None:
        """Move `target`'s position to `after_id`, back or forth (`listen --after`)."""
        self.store.write_one("INSERT INTO forwarding_positions (target, last_id, forwarded, updated_at)"
                             " VALUES (?, ?, 0, ?) ON CONFLICT (target) DO UPDATE SET last_id = excluded.last_id,"
                             " updated_at = excluded.updated_at", (target, after_id, now_iso()))

    def advance(self, target: str, event_id: int) -> None:
        """Record that the event `event_id` (and so every one before it) was delivered to `target`."""
        self.store.write_one("UPDATE forwarding_positions SET last_id = ?, forwarded = forwarded + 1, updated_at = ?"
                             " WHERE target = ?", (event_id, now_iso(), target))

    def positions(self) -> list[dict]:
        """Every target's position as dicts (target, last_id, forwarded, updated_at), by target."""
        return self.store.read_dicts("SELECT target, last_id, forwarded, updated_at FROM forwarding_positions"
                                     " ORDER BY target")
