"""Connected shops: the credentials of each Big Cartel account the kit reads, in one private file.

`ShopBook(path)` keeps {account id: shop} in a JSON file of mode 0600 (its folder 0700), by default
`~/.config/bchooks/shops.json`, outside any repository (`BCHOOKS_SHOPS`). A shop is reached with HTTP Basic (the
store's subdomain and password: personal use, your own shop) or an OAuth access token (an approved app).
`BCHOOKS_TOKEN` (with `BCHOOKS_ACCOUNT_ID`) still works as one more shop's credential. Secrets never appear in
`repr`, in listings or in messages.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .clock import now_iso
from .errors import ConfigError, InputError

DEFAULT_PATH = Path("~/.config/bchooks/shops.json")
KINDS = ("basic", "token")


@dataclass(frozen=True)
class Shop:
    """One connected shop. `secret` is the store password (basic) or the access token (token)."""

    account_id: str
    kind: str
    api_url: str
    store_name: str = ""
    subdomain: str = ""
    secret: str = field(default="", repr=False)
    connected_at: str = ""

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


class ShopBook:
    def __init__(self, path=None):
        self.path = Path(path or DEFAULT_PATH).expanduser()

    def __repr__(self):
        return f"ShopBook({str(self.path)!r})"

    def shops(self):
        """The connected shops, by account id."""
        try:
            document = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read the shops file {self.path}: {error}") from None
        return [Shop(**entry) for entry in document.get("shops", [])]

    def get(self, account_id):
        for shop in self.shops():
            if shop.account_id == str(account_id):
                return shop
        raise InputError(f"no shop {account_id} is connected (see `bchooks shops`)")

    def add(self, shop):
        """Keep `shop` (replacing an earlier connection of the same account)."""
        shops = [s for s in self.shops() if s.account_id != shop.account_id]
        shop = Shop(**{**shop.__dict__, "connected_at": shop.connected_at or now_iso()})
        self._write([*shops, shop])
        return shop

    def remove(self, account_id):
        shops = self.shops()
        kept = [s for s in shops if s.account_id != str(account_id)]
        if len(kept) == len(shops):
            raise InputError(f"no shop {account_id} is connected (see `bchooks shops`)")
        self._write(kept)

    def _write(self, shops):
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"shops": [s.__dict__ for s in shops]}, handle, indent=2)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)


def connect_basic(api_url, subdomain, password, book):
    """Check a shop's subdomain and password with `GET /v1/accounts`, then keep them; the `Shop`."""
    from .client import BigCartelClient
    if not subdomain or not password:
        raise InputError("give the store's subdomain and its password")
    with BigCartelClient(api_url, basic=(subdomain, password)) as client:
        account = client.account()
    attributes = account.get("attributes") or {}
    return book.add(Shop(str(account["id"]), "basic", api_url, attributes.get("store_name", ""), subdomain, password))


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
