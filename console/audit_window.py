"""The audit browser's window onto the trail: which rows exist and which pages are loaded.

Plain data, no Textual, so the paging logic is tested on its own. A *view*
is the events matching one :class:`engine.api.AuditFilter`, in ``seq``
order, up to a fixed ``upper`` seq (the newest matching event when the view
was loaded; live tail moves it on). Row ``i`` of the view is the ``i``-th
matching event. Rows are fetched a page at a time and kept in a small LRU
cache, so a screen over 100,000+ events only ever holds a few hundred.

:meth:`AuditWindow.plan` picks the cheapest query for a page:

* a neighbouring page is cached: keyset paging (``after_seq`` from the page
  before, or ``before_seq`` from the page after) costs the same at any depth;
* otherwise ``offset`` paging from whichever end of the view is nearer
  (ascending from the start, ``newest_first`` from the end).

Every reset bumps :attr:`AuditWindow.generation`; pages fetched for an
older generation are dropped when they arrive.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.api import AuditFilter, AuditRecord

PAGE_SIZE = 200
MAX_PAGES = 48


@dataclass(frozen=True, slots=True)
class PageQuery:
    """How to fetch one page: keyword arguments for ``engine.audit.query`` (besides the filter)."""

    page: int
    generation: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    reverse: bool = False  # the query returns the page newest first


class AuditWindow:
    """Row count, bounds and cached pages of one filtered view of the audit trail."""

    def __init__(self, page_size: int = PAGE_SIZE, max_pages: int = MAX_PAGES) -> None:
        self.page_size = page_size
        self.max_pages = max_pages
        self.flt = AuditFilter()
        self.total = 0
        self.upper = 0  # newest seq in the view (0: empty)
        self.generation = 0
        self._pages: OrderedDict[int, list[AuditRecord]] = OrderedDict()

    # -- the view ------------------------------------------------------------------

    def reset(self, flt: AuditFilter, total: int, upper: int) -> None:
        """A new view: ``total`` matching rows, the newest with seq ``upper``."""
        self.flt = flt
        self.total = max(0, total)
        self.upper = upper if self.total else 0
        self.generation += 1
        self._pages.clear()

    @property
    def pages(self) -> int:
        return -(-self.total // self.page_size)

    def page_of(self, row: int) -> int:
        return row // self.page_size

    def page_length(self, page: int) -> int:
        return max(0, min(self.page_size, self.total - page * self.page_size))

    def record(self, row: int) -> AuditRecord | None:
        """The event at ``row``, or None while its page is not loaded."""
        if not 0 <= row < self.total:
            return None
        page = self._pages.get(row // self.page_size)
        if page is None:
            return None
        self._pages.move_to_end(row // self.page_size)
        index = row % self.page_size
        return page[index] if index < len(page) else None

    def is_loaded(self, page: int) -> bool:
        return page in self._pages

    @property
    def cached_pages(self) -> int:
        return len(self._pages)

    def missing(self, rows: Iterable[int]) -> list[int]:
        """Pages (in order, without repeats) holding ``rows`` that are not loaded."""
        out: list[int] = []
        for row in rows:
            if 0 <= row < self.total:
                page = row // self.page_size
                if page not in self._pages and page not in out:
                    out.append(page)
        return out

    def find(self, seq: int) -> int | None:
        """The row of ``seq`` if it sits in a loaded page."""
        for page, records in self._pages.items():
            if records and records[0].seq <= seq <= records[-1].seq:
                for i, record in enumerate(records):
                    if record.seq == seq:
                        return page * self.page_size + i
        return None

    # -- fetching --------------------------------------------------------------------

    def plan(self, page: int) -> PageQuery:
        """The cheapest query for ``page`` given what is cached."""
        length = self.page_length(page)
        before = self._pages.get(page - 1)
        after = self._pages.get(page + 1)
        upper_bound = self.upper + 1
        if before and len(before) == self.page_size:
            return PageQuery(
                page, self.generation, {"after_seq": before[-1].seq, "before_seq": upper_bound, "limit": length}
            )
        if after and length == self.page_size:
            return PageQuery(
                page,
                self.generation,
                {"before_seq": after[0].seq, "limit": length, "newest_first": True},
                reverse=True,
            )
        start = page * self.page_size
        from_end = self.total - (start + length)
        if from_end < start:
            return PageQuery(
                page,
                self.generation,
                {"before_seq": upper_bound, "limit": length, "offset": from_end, "newest_first": True},
                reverse=True,
            )
        return PageQuery(page, self.generation, {"before_seq": upper_bound, "limit": length, "offset": start})

    def store(self, query: PageQuery, records: list[AuditRecord]) -> bool:
        """Keep a fetched page; False (dropped) if the view changed meanwhile."""
        if query.generation != self.generation:
            return False
        if query.reverse:
            records = records[::-1]
        self._pages[query.page] = records
        self._pages.move_to_end(query.page)
        while len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)
        return True

    def append(self, records: list[AuditRecord]) -> int:
        """New events at the end of the view (live tail); returns how many were added."""
        added = 0
        for record in records:
            if record.seq <= self.upper:
                continue  # already in the view
            row = self.total
            page, index = divmod(row, self.page_size)
            cached = self._pages.get(page)
            if cached is not None and len(cached) == index:
                cached.append(record)
            elif index == 0:
                self._pages[page] = [record]
            else:
                self._pages.pop(page, None)  # incomplete: refetched when shown
            self.total += 1
            self.upper = record.seq
            added += 1
        while len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)
        return added


async def locate(
    query: Callable[..., Awaitable[list[AuditRecord]]], flt: AuditFilter, total: int, upper: int, seq: int
) -> int:
    """The row of the first event with seq >= ``seq`` in a view (``total`` if none).

    Binary search with one-row offset queries (about 17 for 100,000 rows);
    used to keep the selection when the filter changes and to jump to a seq.
    """
    lo, hi = 0, total
    while lo < hi:
        mid = (lo + hi) // 2
        rows = await query(flt, limit=1, offset=mid, before_seq=upper + 1)
        if not rows:
            hi = mid
        elif rows[0].seq < seq:
            lo = mid + 1
        else:
            hi = mid
    return lo
