"""The quick start's development secret: generated once into a git-ignored file only its owner can read."""

import os
import secrets
import stat
from pathlib import Path

DEFAULT_PATH = Path(".bchooks") / "dev-secret"


def ensure_dev_secret(path=DEFAULT_PATH):
    """Return (secret, path), creating the file (mode 0600, folder 0700) on first use."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            os.chmod(path, 0o600)
        secret = path.read_text().strip()
        if secret:
            return secret, path.resolve()
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret, path.resolve()
