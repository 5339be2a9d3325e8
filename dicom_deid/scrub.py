"""Known values scrubbed wherever else they are: the originals the workflow replaces or removes, found in other
text attributes, kept private elements or binary headers (Siemens CSA), are replaced there too.

Known values: the 17 attributes, every person name (each component group and part), the birth date, every UID the
workflow remaps. `known_values` reads them from the original dataset; after anonymization `replacements` pairs
each with what was written in its place (the pseudonym, the new UID, or a neutral fill where the original was
removed), and `scrub` rewrites the other elements:
- text elements: each occurrence replaced by the pseudonym (a neutral fill of the same length where the result
  would not fit the VR's maximum length);
- text in ISO 2022 code extensions (tags.uses_code_extensions) is decoded first: its bytes switch character
  sets by escape sequences, so a value's own encoding need not match them;
- binary elements (OB, OW, UN: private headers): each occurrence, in every encoding a file uses (Latin-1,
  UTF-8, the declared character set, UTF-16 as Siemens' private headers use it), replaced by bytes of the same
  length, so that CSA and similar headers still parse.
What counts as an occurrence follows the verifier's length rule (tags.MIN_SCAN_LENGTH, tags.ANYWHERE_SCAN_LENGTH):
short values are never searched for, short-ish ones only as whole tokens. Attributes that name things rather than
people (tags.NAMING_KEYWORDS), private creators, UIDs, codes, dates and numbers are never rewritten.
Imports no dicognito.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pydicom
from pydicom.charset import convert_encodings
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element

from dicom_deid import tags
from dicom_deid.dicomfile import stored_vr

TEXT_VRS = tags.TEXT_VRS
BINARY_VRS = frozenset({"OB", "OW", "UN"})
MAX_LENGTH = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240}
_KNOWN_TAGS = frozenset(tag_for_keyword(k) for k in tags.SCANNED)
_NAMING_TAGS = frozenset(tag_for_keyword(k) for k in tags.NAMING_KEYWORDS)
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_CHARSET = 0x00080005
Path = tuple  # (tag, item index, tag, ...)


def _strings(element: pydicom.DataElement) -> list[str]:
    value = element.value
    if value is None or value == "" or isinstance(value, bytes):
        return []
    values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
    return [str(v).strip() for v in values]


def _element_at(dataset: pydicom.Dataset, path: Path) -> pydicom.DataElement | None:
    for index in range(0, len(path) - 1, 2):
        if path[index] not in dataset:
            return None
        items = dataset[path[index]].value
        if path[index + 1] >= len(items):
            return None
        dataset = items[path[index + 1]]
    return dataset[path[-1]] if path[-1] in dataset else None


def known_values(dataset: pydicom.Dataset, keep: tuple[str, ...] = ()) -> dict[Path, list[str]]:
    """{path: original values} of every element whose value the workflow replaces or removes."""
    kept = frozenset(tag_for_keyword(k) for k in keep)
    found: dict[Path, list[str]] = {}

    def walk(ds: pydicom.Dataset, prefix: Path) -> None:
        for tag, stored in sorted(ds.items()):  # in tag order: the first path of a value pairs it (replacements)
            vr = stored_vr(stored)
            if vr == "SQ":
                element = ds[tag]
                if element.VR == "SQ":
                    for index, item in enumerate(element.value):
                        walk(item, (*prefix, tag, index))
                continue
            if tag in kept or tag.is_private:
                continue
            if tag in _KNOWN_TAGS or vr == "PN" or (vr == "UI" and not _uid_kept(tag, ds)):
                values = _strings(ds[tag])
                if any(values):
                    found[(*prefix, tag)] = values

    walk(dataset.file_meta, ("meta",))
    walk(dataset, ())
    return found


def _uid_kept(tag, dataset: pydicom.Dataset) -> bool:
    value = str(dataset[tag].value or "")
    return tags.uid_is_kept(keyword_for_tag(tag), value)


def _fill(value: str) -> str:
    return "X" * len(value)


def replacements(known: dict[Path, list[str]], dataset: pydicom.Dataset) -> dict[str, tuple[str, str]]:
    """{original value: (replacement, attribute keyword)}, from what the anonymized dataset holds at each path.

    A person name's parts are paired part by part; a removed attribute's value gets a neutral fill.
    """
    pairs: dict[str, tuple[str, str]] = {}
    for path, originals in known.items():
        keyword = keyword_for_tag(path[-1]) or str(path[-1])
        ds = dataset.file_meta if path[0] == "meta" else dataset
        element = _element_at(ds, path[1:] if path[0] == "meta" else path)
        written = _strings(element) if element is not None else []
        if len(written) != len(originals):
            written = [_fill(v) for v in originals]
        for original, new in zip(originals, written, strict=True):
            _pair(pairs, original, new, keyword)
            if element is not None and element.VR == "PN":
                _pair_name_parts(pairs, original, new, keyword)
    return pairs


def _pair_name_parts(pairs: dict, original: str, new: str, keyword: str) -> None:
    """Each component group of a person name (alphabetic=ideographic=phonetic) and each of its parts with the
    same group and part of the new name; dicognito writes one group, which then stands in for all three.
    The pieces are those of tags.person_name_parts, which the verifier searches for."""
    new_groups = new.split("=")
    for index, group in enumerate(original.split("=")):
        new_group = new_groups[index] if index < len(new_groups) and new_groups[index] else new_groups[0]
        _pair(pairs, group.strip(), new_group.strip() or _fill(group), keyword)
        new_parts = new_group.split("^")
        for number, part in enumerate(group.split("^")):
            new_part = new_parts[number] if number < len(new_parts) else _fill(part)
            _pair(pairs, part.strip(), new_part.strip() or _fill(part), keyword)


def _pair(pairs: dict, original: str, new: str, keyword: str) -> None:
    if tags.scan_length(original) < tags.MIN_SCAN_LENGTH or tags.is_placeholder(original) or original == new:
        return
    pairs.setdefault(original, (new, keyword))


@dataclass(frozen=True)
class _Needle:
    original: bytes
    replacement: str  # the text written in its place
    encoding: str
    keyword: str  # the known value's attribute, for the counts
    token_only: bool


def _encodings(dataset: pydicom.Dataset) -> list[str]:
    declared = dataset.get_item(_CHARSET)
    names = ["latin_1", "utf_8", "utf_16_le"]
    if declared is not None:
        value = declared.value
        value = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        charsets = [c.strip() for c in (value.split("\\") if isinstance(value, str) else value)]
        names += [e for e in convert_encodings(charsets) if e not in names]
    return names


def _needles(pairs: dict[str, tuple[str, str]], encodings: list[str]) -> list[_Needle]:
    needles = []
    for original, (new, keyword) in sorted(pairs.items(), key=lambda kv: -len(kv[0])):
        seen = set()
        token_only = tags.scan_length(original) < tags.ANYWHERE_SCAN_LENGTH
        for encoding in encodings:
            try:
                encoded = original.encode(encoding)
            except (UnicodeEncodeError, LookupError):
                continue
            if encoded not in seen:
                seen.add(encoded)
                needles.append(_Needle(encoded, new, encoding, keyword, token_only))
    return needles


_UID_LIKE = re.compile(rb"[0-9]+(\.[0-9]+)+")


def _pattern(needle: _Needle) -> re.Pattern:
    if _UID_LIKE.fullmatch(needle.original):  # a UID is never part of a longer UID
        return re.compile(tags.whole_uid(needle.original))
    if needle.token_only:
        return re.compile(tags.whole_word(needle.original))
    return re.compile(re.escape(needle.original))


def _path_pattern(needle: _Needle) -> re.Pattern:
    """_pattern for a file or folder name: a UID there may stand between dots that are not its own (storescp's
    MR.<SOP Instance UID>.dcm), so only a digit, or a dot and a digit, continue it."""
    if _UID_LIKE.fullmatch(needle.original):
        return re.compile(tags.whole_uid_in_name(needle.original))
    return _pattern(needle)


def scrub_path(relpath: str, pairs: dict[str, tuple[str, str]]) -> str:
    """`relpath` (a file's path below its session folder) with each known value in its file and folder names
    replaced by what the file now holds in its place: the new UID for the original SOP Instance UID that storescp
    names a file after, the pseudonym for a patient's name or ID in a folder name. The same rule as for the values
    (tags.MIN_SCAN_LENGTH), in each of tags.NAME_ENCODINGS; a '/' in a replacement becomes '_'."""
    return NameScrubber(pairs).path(relpath) if pairs else relpath


class NameScrubber:
    """scrub_path for many names against the same pairs (a session's files that were not written): the needles
    are built once, not for every name; `text` scrubs a message that quotes names (an archive member's path)."""

    def __init__(self, pairs: dict[str, tuple[str, str]]) -> None:
        self.pairs = dict(pairs)
        for value, pair in pairs.items():  # MUELLER_HANS for Müller^Hans: each spelt otherwise, as in names
            for spelling in tags.name_spellings(value):
                self.pairs.setdefault(spelling, pair)
        self._needles: dict[bool, _NeedleIndex] = {}

    def _for(self, text: str) -> _NeedleIndex:
        ascii_only = text.isascii()  # an ASCII name can hold no value in another encoding's bytes
        if ascii_only not in self._needles:
            encodings = ["utf_8"] if ascii_only else list(tags.NAME_ENCODINGS)
            self._needles[ascii_only] = _NeedleIndex(_needles(self.pairs, encodings))
        return self._needles[ascii_only]

    def path(self, relpath: str) -> str:
        if not self.pairs:
            return relpath
        needles = self._for(relpath)
        names = [_scrub_name(name, needles) for name in relpath.split("/")]
        return "/".join(name if name not in ("", ".", "..") else "X" for name in names)

    def text(self, text: str) -> str:
        return _scrub_name(text, self._for(text)) if self.pairs else text


class _NeedleIndex:
    """The needles, and for many (a session's values: a UID per file) an index by their first bytes, so that a
    name is tried only against the needles that could occur in it, in their order."""

    START = 3  # bytes; every value searched is at least tags.MIN_SCAN_LENGTH characters

    def __init__(self, needles: list[_Needle]) -> None:
        self.needles = needles
        self.by_start: dict[bytes, list[int]] | None = None
        if len(needles) > 64:  # a file's own few dozen: a plain pass costs less than building the index
            self.short = [i for i, needle in enumerate(needles) if len(needle.original) < self.START]
            self.by_start = {}
            for i, needle in enumerate(needles):
                self.by_start.setdefault(needle.original[: self.START], []).append(i)

    def within(self, data: bytes) -> list[_Needle]:
        if self.by_start is None:
            return self.needles
        found = set(self.short)
        for start in range(len(data) - self.START + 1):
            found.update(self.by_start.get(data[start : start + self.START], ()))
        return [self.needles[i] for i in sorted(found)]


def _scrub_name(name: str, needles: _NeedleIndex) -> str:
    data, written = name.encode("utf_8", "surrogateescape"), []
    for needle in needles.within(data):
        if needle.original in data:
            new = needle.replacement.replace("/", "_").replace("\0", "_").encode("utf_8") or _same_length(needle)
            data, _, written = _substitute(data, _path_pattern(needle), new, written)
    return data.decode("utf_8", "surrogateescape")


def _same_length(needle: _Needle) -> bytes:
    """The replacement as bytes of exactly the original's length: binary headers keep every offset."""
    size = len(needle.original)
    try:
        encoded = needle.replacement.encode(needle.encoding)
    except UnicodeEncodeError:
        encoded = b""
    pad = "X".encode(needle.encoding)
    if len(encoded) > size:
        encoded = b""
    return encoded + pad * ((size - len(encoded)) // len(pad)) + b" " * ((size - len(encoded)) % len(pad))


def _substitute(data: bytes, pattern: re.Pattern, new: bytes, written: list[tuple[int, int]]):
    """pattern.subn(new, data), except where a match overlaps bytes an earlier replacement wrote (`written`): a
    pseudonym is never scrubbed again. A fake ROSALINDA written for the original name would otherwise become
    ROSALINDAA when the original given name ROSALIND is replaced next. (changed data, count, spans written)."""
    edits = [
        match.span()
        for match in pattern.finditer(data)
        if not any(s < match.end() and match.start() < e for s, e in written)
    ]
    if not edits:
        return data, 0, written

    def moved(position: int) -> int:  # where a byte outside every edit lands after them
        return position + sum(len(new) - (b - a) for a, b in edits if b <= position)

    pieces, last = [], 0
    for a, b in edits:
        pieces += [data[last:a], new]
        last = b
    pieces.append(data[last:])
    spans = [(moved(s), moved(e)) for s, e in written] + [(moved(a), moved(a) + len(new)) for a, _ in edits]
    return b"".join(pieces), len(edits), spans


def _replace_text(text: bytes, needles: list[_Needle], vr: str, counts: Counter, place: str) -> bytes:
    """Replace in a text value (one or more values split by backslashes)."""
    parts = text.split(b"\\")
    for number, part in enumerate(parts):
        written: list[tuple[int, int]] = []
        for needle in needles:
            if needle.original not in part:
                continue
            pattern = _pattern(needle)
            try:
                new = needle.replacement.encode(needle.encoding)
            except UnicodeEncodeError:
                new = _same_length(needle)
            changed, found, spans = _substitute(part, pattern, new.replace(b"\\", b"/"), written)
            limit = MAX_LENGTH.get(vr)
            if found and limit and len(changed.rstrip(b" \x00")) > limit:
                changed, found, spans = _substitute(part, pattern, _same_length(needle), written)
            if found:
                counts[(needle.keyword, place)] += found
                part, written = changed, spans
        parts[number] = part
    return b"\\".join(parts)


def _replace_binary(data: bytes, needles: list[_Needle], counts: Counter, place: str) -> bytes:
    written: list[tuple[int, int]] = []
    for needle in needles:
        if needle.original not in data:
            continue
        data, found, written = _substitute(data, _pattern(needle), _same_length(needle), written)
        if found:
            counts[(needle.keyword, place)] += found
    return data


def _place(tag) -> str:
    if tag.is_private:
        return f"private ({tag.group:04X},xx{tag.element & 0xFF:02X})"
    return keyword_for_tag(tag) or str(tag)


def scrub(dataset: pydicom.Dataset, pairs: dict[str, tuple[str, str]]) -> Counter:
    """Replace every known original value found in another element; {(attribute of the value, place): count}."""
    counts: Counter = Counter()
    if not pairs:
        return counts
    decode_text = tags.uses_code_extensions(dataset.get("SpecificCharacterSet"))
    needles = _Needles(_needles(pairs, _encodings(dataset)), _needles(pairs, ["utf_8"]), decode_text)
    _scrub_level(dataset, needles, counts)
    return counts


@dataclass(frozen=True)
class _Needles:
    in_bytes: list[_Needle]  # every encoding the file may use, for values still in their file bytes
    in_text: list[_Needle]  # for values pydicom already decoded to text (searched as UTF-8)
    decode_text: bool  # text elements are decoded first: their bytes depend on escape sequences (ISO 2022)


def _scrub_level(dataset: pydicom.Dataset, needles: _Needles, counts: Counter) -> None:
    for tag, stored in dataset.items():
        vr = stored_vr(stored)
        if vr == "SQ":
            element = dataset[tag]
            if element.VR == "SQ":
                for item in element.value:
                    _scrub_level(item, needles, counts)
                continue
        if tag in _KNOWN_TAGS or tag in _NAMING_TAGS or tag in _PIXEL_TAGS or tag.element == 0:
            continue
        if tag.is_private and 0x10 <= tag.element <= 0xFF:  # a private creator names a vendor
            continue
        if vr in TEXT_VRS or vr in BINARY_VRS or vr is None:
            _scrub_element(dataset, tag, vr, needles, counts)


def _scrub_element(dataset: pydicom.Dataset, tag, vr: str | None, needles: _Needles, counts: Counter) -> None:
    raw = dataset.get_item(tag)
    if isinstance(raw, RawDataElement) and needles.decode_text and vr in TEXT_VRS:
        # A decoded copy for the text branch below, stored only where it replaces something: pydicom encodes a
        # stored element anew, and its escape sequences need not be the original writer's.
        raw = convert_raw_data_element(raw, encoding=dataset.original_character_set, ds=dataset)
    if isinstance(raw, RawDataElement):
        data = raw.value or b""
        if not any(needle.original in data for needle in needles.in_bytes):
            return
        place = _place(tag)
        if vr in TEXT_VRS:
            new = _replace_text(data, needles.in_bytes, vr, counts, place)
            # The original's pad space is no longer the last byte's pad: padded again, a value would end in two
            # spaces, and dcm2niix keeps one in the sidecar ("...LUCAS ").
            if new != data:
                new = new.rstrip(b" ")
                new += b" " * (len(new) % 2)  # DICOM values have even length
        else:
            new = _replace_binary(data, needles.in_bytes, counts, place)
        if new != data:
            dataset[tag] = raw._replace(value=new, length=len(new))
        return
    element = raw
    value = element.value
    if isinstance(value, bytes):
        new = _replace_binary(value, needles.in_bytes, counts, _place(tag))
        if new != value:
            element.value = new
    elif vr in TEXT_VRS and value:
        encoding = "utf_8"
        text = "\\".join(_strings(element)) if isinstance(value, pydicom.multival.MultiValue) else str(value)
        data = text.encode(encoding, "surrogateescape")
        if not any(needle.original in data for needle in needles.in_text):
            return
        new = _replace_text(data, needles.in_text, vr, counts, _place(tag)).decode(encoding, "surrogateescape")
        if new != text:
            element.value = new.split("\\") if "\\" in new else new
            dataset[tag] = element  # a decoded copy (ISO 2022) is stored now
