"""Walking the API's lists: orders by update time, products by position, every answer checked before it is used.

What the docs leave open decides the shape of the walks (`../shared/bigcartel.md`, "What the docs leave open"):

- The largest page the API honours is not documented. A page is the last only when the answer says so: no
  `links.next` and a `meta.count` reached, or, when it says neither, a page shorter than asked for. A walk that is
  given the same page again for the next position stops with an `ApiError` (a server looping on `links.next`).
- Whether `filter[updated_at_from]` is inclusive is not documented. Each page of orders asks from one millisecond
  before the newest update already read (so under either reading the orders of that very time come back, and are
  skipped as read). When more than a page of orders share one `updated_at` (a bulk "mark shipped"), that block is
  read by offset, again and again until two reads in a row find the same orders: an order updated meanwhile
  moves out from under the offsets and would let the one after it slip, and the second read finds it. The walk
  then goes past the block with `from` at that time if the API reads it as exclusive (it says so by answering with
  none of the block), else one millisecond after it.
- Whether list answers carry `included` is not documented: each document says whether every object its
  relationships point at was found (`complete`); the poller reads an incomplete one alone.

Every resource is checked against the documented shape (`problem`): a malformed one is handed to `on_malformed`
with its reason and skipped, and the walk goes on.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..clock import iso, parse_iso
from ..errors import ApiError

MS = timedelta(milliseconds=1)
MAX_PAGES = 100_000  # a walk never reads more pages than this
BLOCK_READS = 6  # reads of one same-time block before the walk gives up (the next poll tries again)

Malformed = Callable[[str, str, str], None]  # (kind, id or position, reason)


def updated_time(resource: dict) -> datetime | None:
    """A checked resource's `updated_at` as a datetime (None when it has none)."""
    text = (resource.get("attributes") or {}).get("updated_at")
    return parse_iso(text) if isinstance(text, str) else None


def _describe(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, (str, int)) else repr(value)[:40]


def problem(resource: Any, kind: str) -> str | None:
    """Why `resource` (one element of a list answer's `data`, or a single answer's `data`) is not a resource of the
    documented shape, or None when it is. Orders need a parseable `updated_at` (the walk's key)."""
    if not isinstance(resource, dict):
        return f"a {kind} that is a {type(resource).__name__}, not an object"
    identifier = resource.get("id")
    if isinstance(identifier, bool) or not isinstance(identifier, (str, int)) or str(identifier).strip() == "":
        return f"a {kind} without a string id (id {_describe(identifier)})"
    attributes = resource.get("attributes", {})
    if not isinstance(attributes, dict):
        return f"{kind} {str(identifier)[:40]}: attributes that are a {type(attributes).__name__}, not an object"
    relationships = resource.get("relationships", {})
    if relationships is not None and not isinstance(relationships, dict):
        return f"{kind} {str(identifier)[:40]}: relationships that are not an object"
    for name in ("created_at", "updated_at"):
        value = attributes.get(name)
        if value is None and (name != "updated_at" or kind != "order"):
            continue
        if not isinstance(value, str):
            return f"{kind} {str(identifier)[:40]}: {name} {_describe(value)} is not a timestamp"
        try:
            parse_iso(value)
        except ValueError:
            return f"{kind} {str(identifier)[:40]}: {name} {value[:40]!r} is not a timestamp"
    return None


def related(resource: dict, index: dict) -> tuple[list, bool]:
    """The `included` objects a resource's relationships point at, in relationship order, and whether all of them
    were found."""
    found, complete = [], True
    for relationship in (resource.get("relationships") or {}).values():
        data = relationship.get("data") if isinstance(relationship, dict) else None
        for ref in data if isinstance(data, list) else [data] if isinstance(data, dict) else []:
            item = index.get((ref.get("type"), ref.get("id"))) if isinstance(ref, dict) else None
            if item is None:
                complete = False
            elif item not in found:
                found.append(item)
    return found, complete


@dataclass
class Document:
    """One resource as the kit stores it (`{"data": ..., "included": [...]}`), and whether its relationships were
    all found in the answer it came in."""

    body: dict
    complete: bool = True

    @property
    def id(self) -> str:
        return str(self.body["data"]["id"])


def document_of(answer: Any, kind: str) -> Document:
    """A single resource's answer (`GET .../orders/ID`) as a `Document`; `ApiError` when it is not of the documented
    shape."""
    data = answer.get("data") if isinstance(answer, dict) else None
    why = problem(data, kind)
    if why or not isinstance(data, dict):
        raise ApiError(f"the API answered with a malformed {kind}: {why}")
    included = answer.get("included")
    index = _index(included)
    items, complete = related(data, index)
    return Document({"data": data, "included": items}, complete)


def _index(included: Any) -> dict:
    if not isinstance(included, list):
        return {}
    return {(i.get("type"), i.get("id")): i for i in included if isinstance(i, dict)}


@dataclass
class Page:
    documents: list[Document]
    size: int  # resources in the answer, malformed ones included (what offsets count)
    more: bool  # the answer says (or does not deny) that more follow
    signature: tuple = field(default=())


def read_page(client: Any, path: str, params: dict, kind: str, on_malformed: Malformed) -> Page:
    """One page of a list: its checked documents; malformed resources go to `on_malformed`. A page nested too
    deeply to read is read again one resource at a time, so that only the culprit is skipped."""
    try:
        answer = client.get_json(path, params=params)
    except ApiError as error:
        if type(error).__name__ != "TooDeep" or int(params["page[limit]"]) == 1:
            raise
        return _read_singly(client, path, params, kind, on_malformed)
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise ApiError(f"the API's answer to GET {path} holds no list of {kind}s (no 'data' list): nothing of it "
                       f"was used")
    index = _index(answer.get("included"))
    documents = []
    offset, limit = int(params.get("page[offset]", 0)), int(params["page[limit]"])
    for position, resource in enumerate(data):
        why = problem(resource, kind)
        if why:
            identifier = resource.get("id") if isinstance(resource, dict) else None
            known = isinstance(identifier, (str, int)) and not isinstance(identifier, bool) and str(identifier)
            on_malformed(kind, str(identifier) if known else f"#{offset + position}", why)
            continue
        items, complete = related(resource, index)
        documents.append(Document({"data": resource, "included": items}, complete))
    signature = tuple((type(r).__name__, str(r.get("id"))[:64], str((r.get("attributes") or {}).get("updated_at"))
                       if isinstance(r.get("attributes"), dict) else "") if isinstance(r, dict) else (repr(r)[:64],)
                      for r in data)
    return Page(documents, len(data), _more(answer, offset, len(data), limit), signature)


def _read_singly(client: Any, path: str, params: dict, kind: str, on_malformed: Malformed) -> Page:
    offset, limit = int(params.get("page[offset]", 0)), int(params["page[limit]"])
    documents: list[Document] = []
    size, more = 0, False
    signature: tuple = ()
    for position in range(offset, offset + limit):
        try:
            single = read_page(client, path, {**params, "page[offset]": position, "page[limit]": 1}, kind,
                               on_malformed)
        except ApiError as error:
            if type(error).__name__ != "TooDeep":
                raise
            on_malformed(kind, f"#{position}", "nested too deeply to read")
            size, more, signature = size + 1, True, (*signature, ("too deep", position))
            continue
        documents += single.documents
        size, more, signature = size + single.size, single.more, (*signature, *single.signature)
        if not single.more:
            break
    return Page(documents, size, more, signature)


def _more(answer: dict, offset: int, size: int, limit: int) -> bool:
    links: dict = answer["links"] if isinstance(answer.get("links"), dict) else {}
    meta: dict = answer["meta"] if isinstance(answer.get("meta"), dict) else {}
    if size == 0:
        return False
    if isinstance(links.get("next"), str) and links["next"]:
        return True
    try:
        count = int(str(meta.get("count")))
    except ValueError:
        count = None
    if count is not None:
        return offset + size < count
    return size >= limit and "next" not in links  # no word either way: a full page may be followed by more


def walk_products(client: Any, path: str, page_size: int, on_malformed: Malformed) -> Iterator[Document]:
    """Every product, by position."""
    offset, previous = 0, None
    for _ in range(MAX_PAGES):
        page = read_page(client, path, {"page[limit]": page_size, "page[offset]": offset}, "product", on_malformed)
        if previous is not None and page.signature == previous:
            raise ApiError(f"the API answered GET {path} with the same page for offset {offset} as for the one "
                           f"before: the walk stopped there")
        yield from page.documents
        if not page.more:
            return
        previous = page.signature
        offset += page.size
    raise ApiError(f"the catalogue at {path} did not end within {MAX_PAGES} pages")


class OrderWalk:
    """Every order updated at or after `since` (and up to `until`), oldest update first."""

    def __init__(self, client: Any, path: str, *, since: str | None, until: str | None, page_size: int,
                 on_malformed: Malformed):
        self.client, self.path, self.page_size, self.on_malformed = client, path, page_size, on_malformed
        self.since = parse_iso(since) if since else None
        self.until = until
        self.read: set[tuple[str, datetime | None]] = set()
        self.pages = 0

    def _page(self, after: datetime | None, offset: int = 0) -> Page:
        self.pages += 1
        if self.pages > MAX_PAGES:
            raise ApiError(f"the orders at {self.path} did not end within {MAX_PAGES} pages")
        params: dict[str, Any] = {"page[limit]": self.page_size, "page[offset]": offset, "sort": "updated_at",
                                  "sort_direction": "asc"}
        if after is not None:
            params["filter[updated_at_from]"] = iso(after)
        if self.until:
            params["filter[updated_at_to]"] = self.until
        return read_page(self.client, self.path, params, "order", self.on_malformed)

    def _new(self, page: Page) -> Iterator[Document]:
        for document in page.documents:
            key = (document.id, updated_time(document.body["data"]))
            if self.since is not None and key[1] is not None and key[1] < self.since:
                continue  # (asked for from a millisecond before)
            if key not in self.read:
                self.read.add(key)
                yield document

    def __iter__(self) -> Iterator[Document]:
        low = self.since
        stuck = 0
        while True:
            page = self._page(low - MS if low else None)
            yield from self._new(page)
            if not page.more:
                return
            times = [t for t in (updated_time(d.body["data"]) for d in page.documents) if t is not None]
            high = max(times, default=None)
            if high is not None and (low is None or high > low):
                low, stuck = high, 0
                continue
            stuck += 1
            if stuck > 2 or low is None:
                raise ApiError(f"the orders at {self.path} stopped moving forward at {iso(low) if low else 'the start'}"
                               f": the walk stopped there")
            # a whole page at one time (`low`), more to come: read that block, then go past it
            yield from self._block(low)
            page = self._page(low)  # `from` at the block's time: exclusive readings answer with none of it
            if any(updated_time(d.body["data"]) == low for d in page.documents):
                low = low + MS + MS  # (the next page asks from one millisecond after the block)
                continue
            yield from self._new(page)
            if not page.more:
                return
            times = [t for t in (updated_time(d.body["data"]) for d in page.documents) if t is not None]
            low = max(times, default=low)

    def _block(self, at: datetime) -> Iterator[Document]:
        """Every order updated at `at`, read by offset until two reads in a row agree."""
        previous = None
        for _ in range(BLOCK_READS):
            found, offset, previous_page = set(), 0, None
            while True:
                page = self._page(at - MS, offset)
                if previous_page is not None and page.signature == previous_page:
                    raise ApiError(f"the API answered GET {self.path} with the same page for offset {offset} as for "
                                   f"the one before: the walk stopped there")
                previous_page = page.signature
                found |= {d.id for d in page.documents if updated_time(d.body["data"]) == at}
                yield from self._new(page)
                if not page.more or any((updated_time(d.body["data"]) or at) > at for d in page.documents):
                    break
                offset += page.size
            if found == previous:
                return
            previous = found
        raise ApiError(f"the orders updated at {iso(at)} kept changing while they were read ({BLOCK_READS} reads): "
                       f"the next poll reads them again")
