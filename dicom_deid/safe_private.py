"""The "safe" private elements: those that conversion tools (dcm2niix, nibabel, heudiconv) read.

Policy `private_tags: safe` keeps these and removes every other private element. The list lives in
data/safe_private.tsv (see docs/safe-private.md); this module only reads it and matches elements against it.

A private element (gggg,bbee) belongs to the block whose private creator element is (gggg,00bb) in the same
dataset. Vendors place a creator in whichever block is free, so the same element can be (0029,1010) in one file
and (0029,1110) in another: rows therefore match on (creator string, group, low byte ee), never on bb.

Nesting: private elements inside sequence items count too, and every item carries its own creator elements.
`partition_private` decides one dataset level; `walk_private` and `remove_unsafe_private` go down every level,
entering public sequences always and private sequences only when they are kept (a removed sequence takes its
whole content with it). Philips and Siemens XA files keep much of what dcm2niix reads inside private sequences
(2005,xx0F per-frame items, 2001,xx5F stacks, 0021,xxFE), so those containers are rows of the list.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag, TagType

from dicom_deid.dicomfile import stored_vr

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "safe_private.tsv"
COLUMNS = ("creator", "group", "element", "name", "read_by", "why", "source")

_GROUP = re.compile(r"[0-9A-F]{4}")
_ELEMENT = re.compile(r"[0-9A-F]{2}")
# Creator elements occupy (gggg,0010-00FF); below that a private group holds only its group length.
_FIRST_BLOCK, _LAST_BLOCK = 0x10, 0xFF


@dataclass(frozen=True)
class SafePrivateRow:
    """One kept private element: `group` and `element` (the low byte) as ints, `read_by` as tool names."""

    creator: str
    group: int
    element: int
    name: str
    read_by: tuple[str, ...]
    why: str
    source: str

    @property
    def is_container(self) -> bool:
        """A private sequence kept for the listed elements inside it, not for a value of its own."""
        return self.why.startswith("container")

    @property
    def pattern(self) -> str:
        """The element as DICOM documents write it, block left open: (0029,xx10)."""
        return f"({self.group:04X},xx{self.element:02X})"


@dataclass(frozen=True)
class SafePrivateList:
    """All rows, with an index from (group, creator) to the low bytes kept under that creator."""

    rows: tuple[SafePrivateRow, ...]
    _index: dict[tuple[int, str], frozenset[int]] = field(init=False, repr=False, compare=False)
    _containers: frozenset[tuple[int, str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[tuple[int, str], set[int]] = {}
        for row in self.rows:
            index.setdefault((row.group, row.creator), set()).add(row.element)
        object.__setattr__(self, "_index", {key: frozenset(elements) for key, elements in index.items()})
        containers = frozenset((row.group, row.creator, row.element) for row in self.rows if row.is_container)
        object.__setattr__(self, "_containers", containers)

    def is_safe(self, dataset: Dataset, tag: TagType) -> bool:
        """Whether private element `tag` of `dataset` (this level only) is listed; its creator is looked up there.

        A private creator element counts as safe when its creator string is listed for its group, so kept
        elements keep the creator that gives them meaning. Elements outside any creator block (group lengths,
        gggg,0001-000F and gggg,0100-0FFF) and elements whose creator element is missing are not safe. A listed
        container that pydicom could not read as a sequence (VR UN, e.g. in an implicit-VR file) is not safe
        either: its content could not be checked element by element.
        """
        tag = Tag(tag)
        if not tag.is_private:
            raise ValueError(f"{tag} is not a private element")
        if _FIRST_BLOCK <= tag.element <= _LAST_BLOCK:
            creator = _creator_string(dataset, tag)
            return creator is not None and (tag.group, creator) in self._index
        block = tag.element >> 8
        if not _FIRST_BLOCK <= block <= _LAST_BLOCK:
            return False
        return self.is_listed(dataset, tag, _creator_string(dataset, Tag(tag.group, block)))

    def is_listed(self, dataset: Dataset, tag: BaseTag, creator: str | None) -> bool:
        """is_safe for a (non-creator) private element whose block's creator string is already known."""
        if creator is None:
            return False
        low_byte = tag.element & 0xFF
        if low_byte not in self._index.get((tag.group, creator), ()):
            return False
        return (tag.group, creator, low_byte) not in self._containers or dataset[tag].VR == "SQ"

    def creators(self) -> frozenset[tuple[int, str]]:
        """Every listed (group, creator) pair."""
        return frozenset(self._index)


class _EveryPrivate:
    """A list on which every private element is safe: walk_private with it visits, and keeps, them all."""

    def is_safe(self, dataset: Dataset, tag: TagType) -> bool:
        return True


EVERY_PRIVATE = _EveryPrivate()


@functools.cache
def load_safe_private(path: Path | str = DEFAULT_PATH) -> SafePrivateList:
    """Read the list once per process and path (the workflow asks for it once per file)."""
    return _load(Path(path).resolve())


@functools.cache
def _load(path: Path) -> SafePrivateList:
    rows = []
    header_seen = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if not header_seen:
            if tuple(fields) != COLUMNS:
                raise ValueError(f"{path}:{number}: header must be {', '.join(COLUMNS)} (tab-separated)")
            header_seen = True
            continue
        rows.append(_parse_row(fields, f"{path}:{number}"))
    if not header_seen:
        raise ValueError(f"{path}: no header line")
    return SafePrivateList(tuple(rows))


def _parse_row(fields: list[str], where: str) -> SafePrivateRow:
    """One TSV line, checked strictly: a typo in the list must fail loudly, not silently keep or drop data."""
    if len(fields) != len(COLUMNS):
        raise ValueError(f"{where}: {len(fields)} fields, expected {len(COLUMNS)}")
    creator, group, element, name, read_by, why, source = fields
    if not creator or creator != _normalise(creator):
        raise ValueError(f"{where}: creator {creator!r} is empty or has trailing spaces/NULs")
    if not _GROUP.fullmatch(group) or int(group, 16) % 2 == 0:
        raise ValueError(f"{where}: group {group!r} is not 4 upper-case hex digits of an odd (private) group")
    if not _ELEMENT.fullmatch(element):
        raise ValueError(f"{where}: element {element!r} is not 2 upper-case hex digits (the low byte)")
    tools = tuple(tool.strip() for tool in read_by.split(","))
    if not all(tools) or not name or not why or not source:
        raise ValueError(f"{where}: name, read_by, why and source must all be filled in")
    return SafePrivateRow(creator, int(group, 16), int(element, 16), name, tools, why, source)


def _normalise(creator: str) -> str:
    """Creator strings are padded to even length with a space (or, wrongly, a NUL); neither is significant."""
    return creator.rstrip(" \x00")


def _creator_string(dataset: Dataset, creator_tag: BaseTag) -> str | None:
    """The creator string of block (gggg,00bb) in this dataset, or None if the element is absent or empty."""
    if creator_tag not in dataset:
        return None
    value = dataset[creator_tag].value
    if isinstance(value, bytes):  # VR UN, e.g. after a trip through implicit VR
        value = value.decode("latin-1")
    elif isinstance(value, list | tuple | MultiValue):  # a backslash in the string makes pydicom split it
        value = "\\".join(str(part) for part in value)
    elif not isinstance(value, str):  # a damaged file: a number where the creator string belongs
        value = "" if value is None else str(value)
    return _normalise(value) or None


def partition_private(
    dataset: Dataset, safe_list: SafePrivateList | None = None
) -> tuple[list[BaseTag], list[BaseTag]]:
    """(kept, removed) private tags of this dataset level, in tag order; nested items are not looked at."""
    safe_list = safe_list or load_safe_private()
    kept: list[BaseTag] = []
    removed: list[BaseTag] = []
    private = [tag for tag in dataset.keys() if tag.is_private]  # noqa: SIM118 - keys() leaves values undecoded
    if not isinstance(safe_list, SafePrivateList):  # any other object answering is_safe
        for tag in private:
            (kept if safe_list.is_safe(dataset, tag) else removed).append(tag)
        return kept, removed
    # Each block's creator looked up once: a GE file holds ~180 private elements in a dozen blocks.
    creators: dict[tuple[int, int], str | None] = {}
    for tag in private:
        if _FIRST_BLOCK <= tag.element <= _LAST_BLOCK:
            creator = creators.setdefault((tag.group, tag.element), _creator_string(dataset, tag))
            safe = creator is not None and (tag.group, creator) in safe_list._index
        else:
            block = tag.element >> 8
            if (tag.group, block) not in creators and _FIRST_BLOCK <= block <= _LAST_BLOCK:
                creators[(tag.group, block)] = _creator_string(dataset, Tag(tag.group, block))
            safe = safe_list.is_listed(dataset, tag, creators.get((tag.group, block)))
        (kept if safe else removed).append(tag)
    return kept, removed


def walk_private(dataset: Dataset, safe_list: SafePrivateList | None = None) -> Iterator[tuple[Dataset, BaseTag, bool]]:
    """(dataset, tag, keep) for every private element at every depth that survives its ancestors.

    Goes into public sequences and into kept private sequences; a removed private sequence is reported
    once and not entered, since removing it removes its content.
    """
    safe_list = safe_list or load_safe_private()
    kept_set = set(partition_private(dataset, safe_list)[0])
    for tag, stored in dataset.items():  # items() avoids parsing every value
        if tag.is_private:
            yield dataset, tag, tag in kept_set
            if tag not in kept_set:
                continue
        if _may_be_sequence(tag, stored):
            element = dataset[tag]
            if element.VR == "SQ":
                for item in element.value:
                    yield from walk_private(item, safe_list)


def _may_be_sequence(tag: BaseTag, stored) -> bool:
    """Without decoding the element: decoding every element would make pydicom re-encode all of them."""
    vr = stored_vr(stored)
    # A private element of an implicit-VR file: only decoding tells (pydicom looks its creator up).
    return vr == "SQ" or (tag.is_private and vr in (None, "UN"))


def remove_unsafe_private(dataset: Dataset, safe_list: SafePrivateList | None = None) -> int:
    """Delete every private element not in the list, at every depth; returns how many were deleted here."""
    safe_list = safe_list or load_safe_private()
    decisions = list(walk_private(dataset, safe_list))  # decide first: deleting while walking skips elements
    doomed = [(owner, tag) for owner, tag, keep in decisions if not keep]
    for owner, tag in doomed:
        del owner[tag]
    return len(doomed)
