"""Allowed spans per class, computed in cached four-week blocks so the timetable and simulator stay fast.

A block holds the allowed pieces (allow windows minus change locks) clipped to the block. A question
joins the blocks it touches and follows a span that runs into a neighbouring block until it ends, up to
`REACH_BLOCKS` blocks past the question; a span longer than that is reported as open-ended. Blocks are
aligned on a fixed epoch, so the answer never depends on where or in which time zone a question starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from include.policy.windows import LockRule, RecurringRule, merge, subtract

BLOCK = timedelta(days=28)
EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday
REACH_BLOCKS = 15  # ~420 days: how far a span is followed beyond the question
MAX_CACHED_BLOCKS = 20_000

Piece = tuple[datetime, datetime, str]


@dataclass(frozen=True)
class LabelledSpan:
    """A merged span with the name of the rule in force when it opens."""

    opens: datetime
    closes: datetime
    label: str
    open_ended: bool = False


def block_index(moment: datetime) -> int:
    return (moment - EPOCH) // BLOCK


def block_start(index: int) -> datetime:
    return EPOCH + index * BLOCK


class BlockCache:
    """Pieces per block, computed once per block by `compute(block_start, block_end)`."""

    def __init__(self, compute: Callable[[datetime, datetime], list[Piece]]) -> None:
        self._compute = compute
        self._blocks: dict[int, list[Piece]] = {}

    def block(self, index: int) -> list[Piece]:
        found = self._blocks.get(index)
        if found is None:
            if len(self._blocks) >= MAX_CACHED_BLOCKS:
                self._blocks.clear()
            found = self._compute(block_start(index), block_start(index + 1))
            self._blocks[index] = found
        return found


class NamedView:
    """The pieces of one lock only, so its whole extent can be followed across blocks."""

    def __init__(self, cache: BlockCache, name: str) -> None:
        self._cache = cache
        self._name = name

    def block(self, index: int) -> list[Piece]:
        return [piece for piece in self._cache.block(index) if piece[2] == self._name]


def covering(blocks: BlockCache | NamedView, start: datetime, end: datetime) -> list[LabelledSpan]:
    """Merged spans intersecting [start, end), each followed to its true ends (within the reach)."""
    if end <= start:
        return []
    first, last = block_index(start), block_index(end - timedelta(microseconds=1))
    pieces = _merge_labelled([piece for index in range(first, last + 1) for piece in blocks.block(index)])
    kept = [
        LabelledSpan(opens, closes, label)
        for opens, closes, label in pieces
        if closes > start and opens < end
    ]
    if not kept:
        return []
    # Follow the first span back while it runs into the previous block.
    first_opens, first_label, first_open_ended = kept[0].opens, kept[0].label, False
    index = first
    while first_opens <= block_start(index):
        if index <= first - REACH_BLOCKS:
            first_open_ended = True
            break
        index -= 1
        before = _merge_labelled(blocks.block(index))
        if not before or before[-1][1] < block_start(index + 1):
            break
        first_opens, first_label = before[-1][0], before[-1][2]
    kept[0] = replace(kept[0], opens=first_opens, label=first_label, open_ended=first_open_ended)
    # Follow the last span forward while it runs into the next block.
    last_closes, last_open_ended = kept[-1].closes, False
    index = last
    while last_closes >= block_start(index + 1):
        if index >= last + REACH_BLOCKS:
            last_open_ended = True
            break
        index += 1
        after = _merge_labelled(blocks.block(index))
        if not after or after[0][0] > block_start(index):
            break
        last_closes = after[0][1]
    # With one span, it is both the first and the last: open-ended if either end was.
    kept[-1] = replace(kept[-1], closes=last_closes, open_ended=kept[-1].open_ended or last_open_ended)
    return kept


def _merge_labelled(pieces: list[Piece]) -> list[Piece]:
    """Join overlapping or touching pieces; the joined span keeps the label of its opening piece."""
    merged: list[Piece] = []
    for opens, closes, label in sorted(pieces, key=lambda p: (p[0], p[1])):
        if merged and opens <= merged[-1][1]:
            kept_opens, kept_closes, kept_label = merged[-1]
            merged[-1] = (kept_opens, max(kept_closes, closes), kept_label)
        else:
            merged.append((opens, closes, label))
    return merged


def lock_blocks(locks: Sequence[LockRule]) -> BlockCache:
    """Every change lock, by name, clipped to each block."""

    def compute(start: datetime, end: datetime) -> list[Piece]:
        pieces = [
            (max(a, start), min(b, end), lock.name) for lock in locks for a, b in lock.spans(start, end)
        ]
        return sorted(pieces, key=lambda p: (p[0], p[1]))

    return BlockCache(compute)


def allowed_blocks(windows: Sequence[RecurringRule], locks: BlockCache) -> BlockCache:
    """A class's allow windows (in the class's order) minus every change lock, per block."""

    def compute(start: datetime, end: datetime) -> list[Piece]:
        if not windows:
            return []
        instances = [
            (max(a, start), min(b, end), window.name)
            for window in windows
            for a, b in window.spans(start, end)
        ]
        holes = merge((a, b) for a, b, _ in locks.block(block_index(start)))
        pieces = subtract(merge((a, b) for a, b, _ in instances), holes)
        order = {window.name: rank for rank, window in enumerate(windows)}
        result = []
        for opens, closes in pieces:
            # The window in force at the opening; the first listed one if several overlap.
            label = min(
                (name for a, b, name in instances if a <= opens < b), key=order.__getitem__, default=""
            )
            result.append((opens, closes, label))
        return result

    return BlockCache(compute)
