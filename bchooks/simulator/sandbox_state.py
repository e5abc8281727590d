"""The sandbox's state file: its shops (orders, products, account), webhooks, events and app tokens, as one JSON
document that survives a restart (`bchooks dev` keeps it in `.bchooks/run/sandbox-state.json`).

`save_state(path, document)` replaces the file whole (a temporary file beside it, flushed to disk, then renamed over
it), mode 0600 since it holds the app tokens; `load_state(path)` reads it back, None when there is none yet, and a
`ConfigError` naming the file when it cannot be used (never a half-restored sandbox).
"""

import json
import os
import tempfile
from pathlib import Path

from ..errors import ConfigError

VERSION = 1
KEYS = ("shops", "webhooks", "events", "next_webhook_id", "app_tokens")


def save_state(path, document):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": VERSION, **document}, separators=(",", ":"))  # (one write: json.dump makes many)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # (mode 0600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_state(path):
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f"cannot read the sandbox state {path}: {error.strerror}") from None
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict) or document.get("version") != VERSION or \
            any(key not in document for key in KEYS) or not document["shops"]:
        raise ConfigError(f"the sandbox state {path} is not one this sandbox wrote (version {VERSION}): move it "
                          f"away or delete it to start with fresh shops")
    return document
