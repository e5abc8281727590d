"""Connected shops: the credentials of each Big Cartel account the kit reads, in one private file.

`ShopBook(path)` keeps {account id: shop} in a JSON file of mode 0600 (its folder 0700), by default
`~/.config/bchooks/shops.json`, outside any repository (`BCHOOKS_SHOPS`). A shop is reached with HTTP Basic (the
store's subdomain and password: personal use, your own shop) or an OAuth access token (an approved app).
`BCHOOKS_TOKEN` (with `BCHOOKS_ACCOUNT_ID`) still works as one more shop's credential. Secrets never appear in
`repr`, in listings or in messages.

The file is read tolerantly, so that a newer version's file still works here: fields this version does not know are
kept (and written back), an entry it cannot use is skipped with one warning line naming it (and kept in the file),
and only a file that is not a shops file at all (not JSON, a list, `null`) is an error. It is written atomically: a
new file of random name created exclusively (never through a link) in the target's own folder, synced, then renamed
over the target; when the path is a symbolic link, its target is what is replaced.
"""

import base64
import dataclasses
import json
import logging
import os
import re
import shlex
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests.auth

from ..clock import now_iso
from ..errors import ConfigError, InputError

DEFAULT_PATH = Path("~/.config/bchooks/shops.json")
KINDS = ("basic", "token")
_TEXT_FIELDS = ("store_name", "subdomain", "connected_at")
_FIELDS = ("account_id", "kind", "api_url", *_TEXT_FIELDS, "secret")
_SUBDOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

log = logging.getLogger(__name__)
_warned: set[str] = set()


def _warn(message: str) -> None:
    """One warning line, once per process: on the log when logging is set up, else on stderr."""
    if message in _warned:
        return
    _warned.add(message)
    if logging.getLogger().hasHandlers():
        log.warning(message)
    else:
        print(f"bchooks: warning: {message}", file=sys.stderr, flush=True)


def _shown(value: Any, limit: int = 40) -> str:
    """A value from the file, safe for one line (escaped, bounded)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _printable(text: str, limit: int = 40) -> str:
    """Text from the file on one line: escaped where not printable, bounded."""
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Shop:
    """One connected shop. `secret` is the store password (basic) or the access token (token); `extra` holds the
    fields of its entry this version does not know (a newer version's), kept as they are and never shown."""

    account_id: str
    kind: str
    api_url: str
    store_name: str = ""
    subdomain: str = ""
    secret: str = field(default="", repr=False)
    connected_at: str = ""
    extra: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        from ..secrecy import remember
        remember(self.secret)  # (redacted from every message of this process, whatever produced it)

    def client(self, **options):
        """A `BigCartelClient` reading this shop."""
        from .client import BigCartelClient
        if self.kind == "basic":
            return BigCartelClient(self.api_url, account_id=self.account_id, basic=(self.subdomain, self.secret),
                                   **options)
        return BigCartelClient(self.api_url, self.secret, account_id=self.account_id,
                               token_source=f"the access token of shop {self.account_id}", **options)

    def public(self):
        """What may be shown of it: everything but the secret."""
        return {"account_id": self.account_id, "store_name": self.store_name, "kind": self.kind,
                "subdomain": self.subdomain, "api_url": self.api_url, "connected_at": self.connected_at}

    def same_shop(self, other: "Shop") -> bool:
        """Whether `other` is this shop again (same account, API and subdomain; a new password or token is fine)."""
        return (self.account_id == other.account_id and self.api_url.rstrip("/") == other.api_url.rstrip("/")
                and (self.subdomain == other.subdomain or not self.subdomain or not other.subdomain))

    def entry(self) -> dict:
        """Its entry in the shops file: the known fields, then the unknown ones as they were read."""
        known = {name: getattr(self, name) for name in _FIELDS}
        return {**known, **{k: v for k, v in self.extra.items() if k not in known}}


def _shop_of(entry: Any) -> Shop:
    """The `Shop` an entry of the file describes; ValueError saying why it cannot be used."""
    if not isinstance(entry, dict):
        raise ValueError(f"it is {_kind_of(entry)}, not an object")
    account_id = entry.get("account_id")
    if isinstance(account_id, int) and not isinstance(account_id, bool):
        account_id = str(account_id)
    if not isinstance(account_id, str) or not account_id.strip():
        raise ValueError("it has no account_id")
    if "kind" not in entry:
        raise ValueError("it has no kind")
    if entry["kind"] not in KINDS:
        raise ValueError(f"its kind {_shown(entry['kind'])} is not one this version knows ({', '.join(KINDS)})")
    values = {"account_id": account_id, "kind": entry["kind"]}
    for name in ("api_url", "secret"):
        if not isinstance(entry.get(name), str) or not entry[name]:
            raise ValueError(f"it has no {name}")
        values[name] = entry[name]
    for name in _TEXT_FIELDS:
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"its {name} is {_kind_of(value)}, not text")
        values[name] = value or ""
    if values["kind"] == "basic" and not values["subdomain"]:
        raise ValueError("it has no subdomain (a store password needs one)")
    return Shop(**values, extra={k: v for k, v in entry.items() if k not in _FIELDS})


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "text", bool: "true/false"}.get(type(value), "a number")


def _account_of(entry: Any) -> str | None:
    """The account id an entry names, usable or not."""
    value = entry.get("account_id") if isinstance(entry, dict) else None
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


@dataclass
class _Contents:
    """The file as read: its entries in order (a `Shop`, or the raw entry this version cannot use, kept as it is)
    and its other top-level fields."""

    entries: list = field(default_factory=list)
    others: dict = field(default_factory=dict)

    def shops(self) -> list[Shop]:
        return [e for e in self.entries if isinstance(e, Shop)]


class ShopBook:
    def __init__(self, path=None, *, replace: bool = False):
        """`replace`: connecting an account already kept for a different shop (another API or subdomain) replaces
        that entry; without it `add` refuses."""
        self.path = Path(path or DEFAULT_PATH).expanduser()
        self.replace = replace
        self._cache: tuple[tuple, _Contents] | None = None

    def __repr__(self):
        return f"ShopBook({str(self.path)!r})"

    def shops(self) -> list[Shop]:
        """The connected shops, read from the file now (cheap when it has not changed: call it as often as you
        like). A file that is not a shops file raises `ConfigError`; an entry that cannot be used is skipped with
        one warning line."""
        return self._read().shops()

    def get(self, account_id):
        for shop in self.shops():
            if shop.account_id == str(account_id):
                return shop
        raise InputError(f"no shop {account_id} is connected (see `bchooks shops`)")

    def add(self, shop: Shop) -> Shop:
        """Keep `shop`: a new account is added; the same shop again (a new password or token) is updated, its
        unknown fields kept; another shop under the same account id is refused unless `replace`."""
        try:
            _shop_of(shop.entry())
        except ValueError as reason:
            raise InputError(f"the shop cannot be kept: {reason}") from None
        contents = self._read()
        shop = dataclasses.replace(shop, connected_at=shop.connected_at or now_iso())
        for index, entry in enumerate(contents.entries):
            if isinstance(entry, Shop) and entry.account_id == shop.account_id and entry.same_shop(shop):
                shop = dataclasses.replace(shop, extra={**entry.extra, **shop.extra})
            elif (entry.account_id if isinstance(entry, Shop) else _account_of(entry)) != shop.account_id:
                continue
            elif not self.replace:
                kept = (f"as another shop ({_printable(entry.subdomain or entry.store_name or entry.kind)} at "
                        f"{_public_url(entry.api_url)})" if isinstance(entry, Shop) else
                        "in an entry this version cannot use")
                raise InputError(f"account {shop.account_id} is already connected {kept}; connect with --replace to "
                                 f"replace it, or `bchooks disconnect {shop.account_id}` first")
            contents.entries[index] = shop
            break
        else:
            contents.entries.append(shop)
        self._write(contents)
        return shop

    def remove(self, account_id):
        """Forget a shop (an entry this version cannot use included)."""
        contents = self._read()
        kept = [e for e in contents.entries
                if (e.account_id if isinstance(e, Shop) else _account_of(e)) != str(account_id)]
        if len(kept) == len(contents.entries):
            raise InputError(f"no shop {account_id} is connected (see `bchooks shops`)")
        self._write(_Contents(kept, contents.others))

    # -- the file
    def _read(self) -> _Contents:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # (a FIFO never blocks a read)
        except FileNotFoundError:
            return _Contents()
        except OSError as error:
            raise ConfigError(f"cannot read the shops file {self.path}: {error.strerror}") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            signature = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_mode)
            if self._cache is not None and self._cache[0] == signature:
                return self._copy(self._cache[1])
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"the shops file {self.path} is not a regular file")
            try:
                data = handle.read()
            except OSError as error:
                raise ConfigError(f"cannot read the shops file {self.path}: {error.strerror}") from None
        if info.st_mode & 0o077:
            _warn(f"the shops file {self.path} can be read by others (mode {stat.S_IMODE(info.st_mode):04o}): "
                  f"run `chmod 600 {shlex.quote(str(self.path))}`")
        contents = self._parse(data)
        self._cache = (signature, contents)
        return self._copy(contents)

    @staticmethod
    def _copy(contents: _Contents) -> _Contents:
        return _Contents(list(contents.entries), dict(contents.others))

    def _parse(self, data: bytes) -> _Contents:
        if not data.strip():
            return _Contents()
        try:
            document = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"the shops file {self.path} is not UTF-8 text: fix or move it") from None
        except ValueError as error:
            where = f" (line {error.lineno})" if isinstance(error, json.JSONDecodeError) else ""
            raise ConfigError(f"the shops file {self.path} is not valid JSON{where}: fix or move it") from None
        except RecursionError:
            raise ConfigError(f"the shops file {self.path} is nested too deeply: fix or move it") from None
        entries = document.get("shops", []) if isinstance(document, dict) else None
        if not isinstance(entries, list):
            found = _kind_of(document) if not isinstance(document, dict) else f"{_kind_of(entries)} for shops"
            raise ConfigError(f'the shops file {self.path} is not a shops file (an object {{"shops": [...]}}), it '
                              f"holds {found}: fix or move it")
        contents = _Contents(others={k: v for k, v in document.items() if k != "shops"})
        seen = set()
        for number, entry in enumerate(entries, 1):
            account = _account_of(entry)
            try:
                shop = _shop_of(entry)
                if shop.account_id in seen:
                    raise ValueError("an earlier entry has the same account_id")
            except ValueError as reason:
                named = f" (account {_printable(account)})" if account else ""
                _warn(f"the shops file {self.path}: entry {number}{named} is skipped: {reason} (kept in the file; the "
                      f"other shops are used)")
                contents.entries.append(entry)
                continue
            seen.add(shop.account_id)
            contents.entries.append(shop)
        return contents

    def _write(self, contents: _Contents) -> None:
        """Replace the file's target atomically with `contents` (mode 0600)."""
        target = Path(os.path.realpath(self.path))
        document = {**contents.others,
                    "shops": [e.entry() if isinstance(e, Shop) else e for e in contents.entries]}
        text = json.dumps(document, indent=2) + "\n"
        temporary = None
        try:
            if not target.parent.is_dir():
                target.parent.mkdir(mode=0o700, parents=True)
            # mkstemp: a random name, O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600, in the target's own folder
            fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
            temporary = None
            folder = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as error:
            raise ConfigError(f"cannot write the shops file {target}: {error.strerror or error}") from None
        finally:
            if temporary is not None:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
        self._cache = None


def _public_url(url: str) -> str:
    from ..secrecy import display_url
    return display_url(url)


def check_subdomain(subdomain: str) -> str:
    """`subdomain` if it can be a Big Cartel store's (letters, digits and inner hyphens, as in
    yourshop.bigcartel.com), else InputError."""
    if not _SUBDOMAIN.fullmatch(subdomain or ""):
        hint = " (give only the first part)" if "." in (subdomain or "") else ""
        raise InputError(f"{_shown(subdomain, 70)} is not a Big Cartel subdomain{hint}: letters, digits and hyphens, "
                         f"like yourshop of yourshop.bigcartel.com")
    return subdomain


class _Utf8BasicAuth(requests.auth.AuthBase):
    """HTTP Basic with the user and password encoded as UTF-8 (RFC 7617's charset; requests' own encodes Latin-1,
    failing on `€` or an emoji). Never shows the password."""

    def __init__(self, user: str, password: str):
        self._header = "Basic " + base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
        self.user = user

    def __call__(self, request):
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self):
        return f"basic_auth({self.user!r})"


def basic_auth(subdomain: str, password: str) -> requests.auth.AuthBase:
    """The `auth` of requests for a store's subdomain and password, any characters (UTF-8)."""
    return _Utf8BasicAuth(subdomain, password)


def connect_basic(api_url, subdomain, password, book):
    """Check a shop's subdomain and password with `GET /v1/accounts`, then keep them; the `Shop`."""
    from .client import BigCartelClient
    from ..secrecy import remember
    remember(password)
    if not subdomain or not password:
        raise InputError("give the store's subdomain and its password")
    check_subdomain(subdomain)
    with BigCartelClient(api_url, basic=(subdomain, password)) as client:
        account = client.account()
    attributes = account.get("attributes")
    store_name = attributes.get("store_name") if isinstance(attributes, dict) else ""
    return book.add(Shop(str(account["id"]), "basic", api_url, str(store_name or ""), subdomain, password))


def shops_of(config, book):
    """Every shop to read: those connected, and the one `BCHOOKS_TOKEN` opens (when set and not among them)."""
    shops = book.shops()
    if config.token and not any(s.kind == "token" and s.secret == config.token for s in shops):
        from .client import BigCartelClient
        account_id = config.account_id
        if not account_id:
            with BigCartelClient(config.api_url, config.token) as client:
                account_id = client.account_id
        if not any(s.account_id == account_id for s in shops):
            shops.append(Shop(account_id, "token", config.api_url, secret=config.token))
    return shops
