"""Shops read through Big Cartel's API: connecting them, polling them into the store, reconciling.

    book.py       the connected shops and their credentials (`ShopBook`, the shops file), connecting with the store
                  password
    client.py     the requests client of the API (a deadline per request, bounded retries, one-sentence errors)
    walks.py      walking the API's lists, every answer checked
    oauth.py      connecting a shop to an approved app (OAuth's authorization-code flow)
    poller.py     polling each shop's orders and products into the store as the events webhooks would bring
    reconcile.py  storing the orders the API has and the store lacks

`bchooks.shops` itself is the shops file's API (`from bchooks.shops import ShopBook` as before the packages).
"""

from .book import DEFAULT_PATH, KINDS, Shop, ShopBook, basic_auth, check_subdomain, connect_basic, shops_of

__all__ = ["DEFAULT_PATH", "KINDS", "Shop", "ShopBook", "basic_auth", "check_subdomain", "connect_basic", "shops_of"]
