"""Per-file checks: `original_facts` before the anonymize stage changes a dataset, `check_output` on the file it
wrote, re-read from disk, in the same worker: transfer syntax and pixel data unchanged, the 13 attributes changed,
the 4 removed at every depth, no original identifying value left in any byte, the policy held.

Identifying values: the originals of the 17 attributes, of every person name (and each name part), the birth
date and every UID that names the patient's instances. Each is searched in every encoding a file may use
(Latin-1, UTF-8, the declared character set, UTF-16 as in Siemens' private headers). Not failures: empty
values, placeholders (tags.PLACEHOLDERS), a value found only inside attributes that name things rather than
people (tags.NAMING_KEYWORDS, private creators), and an original found within a value written in place of a
different original, or within a copy of that value the scrub wrote elsewhere.
"""

from __future__ import annotations

import io
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.charset import convert_encodings
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.filereader import data_element_offset_to_value
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicom_deid import tags
from dicom_deid.dicomfile import LARGE_VALUE, PIXEL_TAGS, read_instance, stored_vr
from dicom_deid.profile_table import BASIC_PROFILE_CODE, OPTION_CODES, load_profile_table
from dicom_deid.records import Policy
from dicom_deid.safe_private import EVERY_PRIVATE, load_safe_private, walk_private
from dicom_deid.verify import FILE_CHECKS

_REPLACED = frozenset(tag_for_keyword(k) for k in tags.REPLACED)
_REMOVED = frozenset(tag_for_keyword(k) for k in tags.REMOVED)
_SCANNED = frozenset(tag_for_keyword(k) for k in tags.SCANNED)
_NAMING = frozenset(tag_for_keyword(k) for k in tags.NAMING_KEYWORDS)
_PATIENT_ID, _STUDY_UID = tag_for_keyword("PatientID"), tag_for_keyword("StudyInstanceUID")
_PATIENT_NAME = tag_for_keyword("PatientName")


def walk_selected(dataset: pydicom.Dataset, wanted, prefix: tuple = ()):
    """Yield (path, element) for elements that `wanted(tag, vr)` accepts, at every depth.

    Only those elements and sequences are converted from their raw bytes; the rest are not touched, which
    makes this several times cheaper than walking every element. path = (tag, item index, tag, ...).
    """
    for tag, stored in dataset.items():
        path = (*prefix, tag)
        vr = stored_vr(stored)
        is_sequence = vr == "SQ"
        if not is_sequence and not wanted(tag, vr):
            continue
        element = dataset[tag]
        if not is_sequence:
            yield path, element
        if is_sequence and element.VR == "SQ":
            for index, item in enumerate(element.value):
                yield from walk_selected(item, wanted, (*path, index))


def _strings(element: pydicom.DataElement) -> list[str]:
    value = element.value
    if value is None or value == "":
        return []
    values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def _encodings(value: str, charsets: tuple[str, ...]) -> set[bytes]:
    found = set()
    for encoding in ("latin_1", "utf_8", "utf_16_le", *charsets):
        try:
            found.add(value.encode(encoding))
        except (UnicodeEncodeError, LookupError):
            continue
    return found - {b""}


def _charsets(dataset: pydicom.Dataset) -> tuple[str, ...]:
    value = dataset.get("SpecificCharacterSet")
    if not value:
        return ()
    names = [value] if isinstance(value, str) else list(value)
    try:
        return tuple(convert_encodings([n.strip() for n in names]))
    except Exception:  # noqa: BLE001 - an unknown character set: the three fixed encodings still apply
        return ()


def _identifying(values: list[str], vr: str | None) -> list[str]:
    """The values, and for a person name each of its component groups and parts; placeholders are nobody."""
    found = list(values)
    if vr == "PN":
        found += [piece for value in values for piece in tags.person_name_parts(value)]
    return [v for v in found if v and not tags.is_placeholder(v)]


@dataclass
class Facts:
    """What the output of one file must preserve or must not contain, taken from the original."""

    transfer_syntax: str
    pixels: dict[int, bytes]
    replaced: dict[tuple, list[str]] = field(default_factory=dict)
    names: dict[tuple, list[str]] = field(default_factory=dict)  # every person name, by path
    identifying: dict[str, str] = field(default_factory=dict)  # each value, and the attribute it was found in first
    charsets: tuple[str, ...] = ()
    patient_id: str = ""
    study_uid: str = ""
    # Profile basic: every attribute of Table E.1-1 in the original, by path: (VR, values; None for a sequence).
    profile: dict[tuple, tuple[str, list[str] | None]] = field(default_factory=dict)


def _kept(policy: Policy | None) -> frozenset[int]:
    return frozenset(tag_for_keyword(k) for k in (policy.keep if policy else ()))


def _kept_by_profile(policy: Policy | None) -> frozenset[int]:
    """Profile basic: attributes an option keeps (K), e.g. DeviceUID with Retain Device Identity; the 13 never."""
    if policy is None or policy.profile != "basic":
        return frozenset()
    table, options = load_profile_table(), frozenset(policy.basic_options)
    return frozenset(tag for tag, row in table.by_tag.items() if row.action(options) == "K") - _REPLACED


def original_facts(dataset: pydicom.Dataset, policy: Policy | None = None) -> Facts:
    """Facts of an original dataset; call before anonymizing it in place."""
    kept = _kept(policy) | _kept_by_profile(policy)
    facts = Facts(
        transfer_syntax=str(dataset.file_meta.TransferSyntaxUID),
        pixels={tag: bytes(dataset[tag].value) for tag in PIXEL_TAGS if tag in dataset},
    )
    facts.charsets = _charsets(dataset)

    def wanted(tag, vr) -> bool:
        return not tag.is_private and tag not in kept and (tag in _SCANNED or vr in ("PN", "UI"))

    for path, element in walk_selected(dataset, wanted):
        values = _strings(element)
        if element.tag in _REPLACED:
            facts.replaced[path] = values
        if element.VR == "PN":
            facts.names[path] = values
        if element.VR == "UI":
            values = [v for v in values if not tags.uid_is_kept(element.keyword, v)]
        for value in _identifying(values, element.VR):
            facts.identifying.setdefault(value, element.keyword or str(element.tag))
    facts.patient_id = str(dataset.get("PatientID", ""))
    facts.study_uid = str(dataset.get("StudyInstanceUID", ""))
    if policy is not None and policy.profile == "basic":
        table = load_profile_table()
        facts.profile = {
            path: (element.VR, None if element.VR == "SQ" else _strings(element))
            for path, element in _walk_public(dataset)
            if path[-1] in table
        }
    return facts


def check_output(facts: Facts, content: bytes, relpath: str, policy: Policy | None = None) -> dict[str, list[str]]:
    """Parse the bytes written (the whole output file) and compare them with the original's facts:
    {check: [failure, ...]}."""
    failures: dict[str, list[str]] = {name: [] for name in FILE_CHECKS}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Large values are left where they lie in `content` (deferred), not copied out: the pixel data are
            # compared in place, and anything else that large is read when a check asks for it.
            dataset = pydicom.dcmread(io.BytesIO(content), defer_size=LARGE_VALUE)
            if dataset.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian:
                dataset = pydicom.dcmread(io.BytesIO(content))  # a deferred read would not find the inflated bytes
            meta, parsed = _split_parsed(content, str(dataset.file_meta.TransferSyntaxUID))
            # Where each pixel value lies in the bytes pydicom parsed (see _split_parsed).
            pixel_spans = {tag: _pixel_span(dataset, tag, parsed) for tag in PIXEL_TAGS if tag in dataset}
            spans = sorted(pixel_spans.values())
            kept = _kept(policy)
            removed = _REMOVED - kept
            value_spans: dict[tuple, tuple[int, int]] = {}
            _value_spans(dataset.file_meta, value_spans, prefix=("meta",))
            selected = _value_spans(
                dataset, value_spans, lambda tag, vr: tag in _REPLACED or tag in removed or vr == "PN"
            )
    except Exception as error:  # noqa: BLE001 - any way a written file fails to parse is a failed check
        failures["readable"].append(f"{relpath}: output does not read as DICOM ({type(error).__name__})")
        return failures

    if str(dataset.file_meta.TransferSyntaxUID) != facts.transfer_syntax:
        failures["transfer_syntax_unchanged"].append(f"{relpath}: transfer syntax changed")
    if not _same_pixels(parsed, pixel_spans, facts.pixels):
        failures["pixel_data_unchanged"].append(f"{relpath}: pixel data changed")

    after = {}
    names_after = {}
    for path, element in selected:
        if element.tag in removed:
            failures["removed_tags_absent"].append(f"{relpath}: {element.keyword} still present")
        else:
            if element.tag in _REPLACED:
                after[path] = _strings(element)
            if element.VR == "PN":
                names_after[path] = _strings(element)
    failures["policy_held"] += _private_policy_failures(dataset, policy, relpath)
    failures["policy_held"] += _file_framing_failures(dataset, content, relpath)
    public_after = dict(_walk_public(dataset)) if facts.profile else {}
    for path, values in facts.replaced.items():
        keyword = keyword_for_tag(path[-1])
        if facts.profile and (_profile_removes(path[-1], policy) or _ancestor_gone(path, public_after)):
            continue  # profile basic removed it, or a sequence holding it (X): profile_held checks that
        if path not in after:
            failures["replaced_tags_changed"].append(f"{relpath}: {keyword} was removed instead of replaced")
        elif values and after[path] == values:
            failures["replaced_tags_changed"].append(f"{relpath}: {keyword} still holds its original value")
    failures["profile_held"] += _profile_failures(facts, dataset, policy, relpath, public_after)
    if (
        policy is not None
        and policy.patient_name is not None
        and str(dataset.get("PatientName", "")) != (policy.patient_name)
    ):
        failures["policy_held"].append(f"{relpath}: PatientName is not the session label")

    # Blanked before the scan: attributes that name things (Manufacturer, private creators), where a value
    # found identifies nobody; and each value written in place of a different original (a fake name drawn from
    # a list of common names may contain an original name part; a fake address, the original country; the
    # data2bids label, a department called MRI).
    pseudonyms = {path for path, values in after.items() if values != facts.replaced.get(path)}
    pseudonyms |= {path for path, values in names_after.items() if values != facts.names.get(path)}
    pseudonyms.add((_PATIENT_NAME,))
    blanked = [span for path, span in value_spans.items() if path in pseudonyms or _names_a_thing(path[-1])]
    # The scrub writes the same pseudonyms into other elements, in place of their originals (a description that
    # named the referring physician): an original found inside such a copy is the pseudonym's, as above.
    written = {value for path in pseudonyms for value in after.get(path) or names_after.get(path) or ()}
    covers = {encoded for value in written for encoded in _encodings(value, facts.charsets)}
    # Pixel values are left out of the scan: they are the original's, byte for byte (checked above), and
    # a scan of a 48 MB multiframe for each value cost more than everything else the worker does with it.
    bounds = [0, *(edge for span in spans for edge in span), len(parsed)]
    outside_pixels = [
        _masked(parsed, start, end, blanked) for start, end in zip(bounds[::2], bounds[1::2], strict=True)
    ]
    header = meta + outside_pixels[0]
    outside_pixels[0] = header
    starts = [start - len(meta) if index == 0 else start for index, start in enumerate(bounds[::2])]
    leftovers: list[tuple[str, int]] = []  # (the attribute the original value came from, where it lies)
    for value, source in facts.identifying.items():
        length = tags.scan_length(value)
        if length < tags.MIN_SCAN_LENGTH:
            continue
        needles = _encodings(value, facts.charsets)
        if _UID_LIKE.fullmatch(value):  # a UID is never part of a longer UID
            found = _first(outside_pixels, starts, needles, covers, _uid)
        elif length >= tags.ANYWHERE_SCAN_LENGTH:
            found = _first(outside_pixels, starts, needles, covers)
        else:
            found = _first(outside_pixels[:1], starts, needles, covers, _token)
        if found is not None:
            leftovers.append((source, found))
    places = _elements_at(content, [offset for _, offset in leftovers]) if leftovers else []
    reported = [(source, where) for (source, _), where in zip(leftovers, places, strict=True)]
    if tags.uses_code_extensions(dataset.get("SpecificCharacterSet")):
        reported += _decoded_leftovers(dataset, facts, pseudonyms, written)
    for source, where in reported:
        failures["no_original_values_in_bytes"].append(f"{relpath}: the original {source} is present in {where}")
    return failures


def _decoded_leftovers(dataset: pydicom.Dataset, facts: Facts, pseudonyms: set, written: set[str]) -> list[tuple]:
    """The scan above for text in ISO 2022 code extensions, whose bytes around a value depend on escape sequences
    the value's own encoding does not show: each original found in a decoded text element, as (its attribute,
    where), by the same length and token rules; the pseudonyms written are blanked as above."""
    patterns = [(pattern, source) for value, source in facts.identifying.items() if (pattern := _scan_pattern(value))]
    found = []
    for path, element in walk_selected(dataset, lambda tag, vr: vr in tags.TEXT_VRS and not _names_a_thing(tag)):
        if path in pseudonyms:
            continue
        text = "\\".join(_strings(element))
        for pseudonym in written:
            text = text.replace(pseudonym, " ")
        data = text.encode("utf_8", "surrogateescape")
        found += [(source, element.keyword or str(element.tag)) for pattern, source in patterns if pattern.search(data)]
    return found


def path_leftovers(facts: Facts, relpath: str, written: set[str]) -> list[tuple[str, int, int]]:
    """Original identifying values in a file's output path, its file and folder names: (the attribute the value
    came from, start, end) in the path's UTF-8 bytes. The byte scan's rule, except that a UID in a name may stand
    between dots that are not its own (storescp's MR.<SOP Instance UID>.dcm). An original inside one of the
    pseudonyms `written` for this file is the pseudonym's. A name that is not UTF-8 is searched in
    tags.NAME_ENCODINGS as well; each value also as tags.name_spellings spells it (MUELLER for Müller)."""
    path = relpath.encode("utf_8", "surrogateescape")
    covers = {value.encode("utf_8") for value in written if value}
    found = []
    encodings = tags.NAME_ENCODINGS if not path.isascii() else ("utf_8",)
    spelt = (
        (form, source) for value, source in facts.identifying.items() for form in (value, *tags.name_spellings(value))
    )
    for value, source in spelt:
        searched = set()  # two encodings that give the same bytes: searched once
        for encoding in encodings:
            try:
                needle = value.encode(encoding)
            except UnicodeEncodeError:
                continue
            if needle in searched or needle not in path:
                continue
            searched.add(needle)
            pattern = _scan_pattern(value, _uid_in_name, encoding)
            found += [
                (source, match.start(), match.end())
                for match in (pattern.finditer(path) if pattern else ())
                if not _covered(path, match.start(), match.end(), covers)
            ]
    return found


def masked_path(relpath: str, leftovers: list[tuple[str, int, int]]) -> str:
    """The path with each leftover's bytes as X: it names the file in messages and reports without the value."""
    path = bytearray(relpath.encode("utf_8", "surrogateescape"))
    for _, start, end in leftovers:
        path[start:end] = b"X" * (end - start)
    return path.decode("utf_8", "replace")


def _first(parts: list[bytes], starts: list[int], needles: set[bytes], covers: set[bytes], pattern=None) -> int | None:
    """Where in the parsed stream a needle first occurs outside every occurrence of `covers` (parts[i] begins at
    starts[i]), or None; with `pattern`, only where pattern(needle) matches (a whole UID, a whole word).
    bytes.find first: it is fast, and most files hold no needle at all."""
    for part, start in zip(parts, starts, strict=False):
        for needle in needles:
            at = part.find(needle)
            while at >= 0:
                end = at + len(needle)
                if pattern is not None:
                    match = pattern(needle).search(part, at)
                    if not match:
                        break
                    at, end = match.start(), match.end()
                if not _covered(part, at, end, covers):
                    return start + at
                at = part.find(needle, at + 1)
    return None


def _covered(part: bytes, at: int, end: int, covers: set[bytes]) -> bool:
    """part[at:end] lies within an occurrence of one of `covers`: one that starts at most at `at` and ends at least
    at `end`, which bytes.find sees within exactly that window."""
    return any(part.find(cover, max(0, end - len(cover)), at + len(cover)) >= 0 for cover in covers)


def _elements_at(content: bytes, offsets: list[int]) -> list[str]:
    """For each offset of the parsed stream, the innermost element whose value holds it, named by keyword or tag
    at each depth: where a leftover lies, without its value. Runs only for a file that failed the scan, and
    parses it once more: elements the checks decoded no longer know where their values lie."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(io.BytesIO(content), defer_size=LARGE_VALUE)
    except Exception:  # noqa: BLE001 - the failures stand; only their places are unknown
        return ["the file"] * len(offsets)
    return [_element_at(dataset, content, offset) for offset in offsets]


def _element_at(dataset: pydicom.Dataset, content: bytes, offset: int) -> str:
    if offset < 0:  # in the file meta of a deflated file, which the scan sees before the inflated stream
        return "the preamble" if offset + _meta_end(content) < 128 else "the file meta"
    if offset < 128 and _has_preamble(content):
        return "the preamble"
    try:
        deflated = dataset.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
        meta = "" if deflated else _innermost(dataset.file_meta, offset, "")  # else value_tell counts inflated bytes
        return meta or _innermost(dataset, offset, "") or "the header"
    except Exception:  # noqa: BLE001 - the failure stands; only its place is unknown
        return "the file"


def _innermost(dataset: pydicom.Dataset, offset: int, prefix: str) -> str:
    for tag, stored in dataset.items():
        name = f"{prefix}{keyword_for_tag(tag) or tag}"
        if stored_vr(stored) == "SQ" and dataset[tag].VR == "SQ":  # pydicom decodes sequences as it reads them
            for index, item in enumerate(dataset[tag].value):
                inner = _innermost(item, offset, f"{name} item {index + 1} > ")
                if inner:
                    return inner
            continue
        start = getattr(stored, "value_tell", None)
        if start is not None and stored.length != 0xFFFFFFFF and start <= offset < start + stored.length:
            return name
    return ""


def _same_pixels(parsed: bytes, spans: dict, pixels: dict[int, bytes]) -> bool:
    """The pixel values at `spans` of the parsed stream are the original's, byte for byte (compared in place)."""
    return spans.keys() == pixels.keys() and all(
        end - start == len(pixels[tag]) and parsed.startswith(pixels[tag], start) for tag, (start, end) in spans.items()
    )


def _pixel_span(dataset: pydicom.Dataset, tag, parsed: bytes) -> tuple[int, int]:
    """(start, end) of a top-level pixel value in the parsed stream, without reading it out.

    A value of undefined length (encapsulated) ends before its sequence delimiter, which ends where the next
    element begins, or the stream."""
    raw = dataset.get_item(tag, keep_deferred=True)
    start = raw.value_tell
    if raw.value is not None:
        return start, start + len(raw.value)
    if raw.length != 0xFFFFFFFF:
        return start, start + raw.length
    implicit_vr = dataset.original_encoding[0]
    following = [
        other.value_tell - data_element_offset_to_value(implicit_vr, stored_vr(other))
        for key, other in dataset.items()
        if key > tag and other.value_tell is not None
    ]
    end = min(following, default=len(parsed)) - 8
    if parsed[end : end + 4] not in (b"\xfe\xff\xdd\xe0", b"\xff\xfe\xe0\xdd"):
        raise ValueError(f"no sequence delimiter after the encapsulated value of {tag}")
    return start, end


def _walk_public(dataset: pydicom.Dataset, prefix: tuple = ()):
    """(path, element) of every public element at every depth, sequences included (then their items)."""
    for tag in sorted(dataset.keys()):
        if tag.is_private:
            continue
        element = dataset[tag]
        yield (*prefix, tag), element
        if element.VR == "SQ":
            for index, item in enumerate(element.value):
                yield from _walk_public(item, (*prefix, tag, index))


def _profile_removes(tag, policy: Policy | None) -> bool:
    if policy is None or policy.profile != "basic":
        return False
    return load_profile_table().row_for(tag).action(frozenset(policy.basic_options)) == "X"


def _ancestor_gone(path: tuple, after: dict) -> bool:
    """A sequence above the attribute was removed or emptied: its own row was checked, its content went with it."""
    for end in range(1, len(path) - 1, 2):
        sequence = after.get(path[:end])
        if sequence is None or sequence.VR != "SQ" or len(sequence.value) <= path[end]:
            return True
    return False


# Codes of Table E.1-1 under which an emptied value is the action held (Z: "zero length, or a dummy").
_MAY_BE_EMPTY = frozenset({"Z", "Z/D", "X/Z", "X/Z/D"})


def _action_problem(code: str, tag, vr: str, before: list[str] | None, element, identifying: dict[str, str]) -> str:
    """Why the output element breaks the code's action, or ""; a sequence's content is checked by its own rows."""
    if code == "X":
        return "" if element is None else "still present"
    if code == "X/Z/U*":
        return ""
    if element is None:
        return "" if code in ("X/Z", "X/D", "X/Z/D") else "removed"
    if vr == "SQ" or (code in ("K", "C") and tag in _REPLACED):
        return ""  # a sequence stays (K, C, D) or is emptied (Z); the 13 keep their pseudonyms (replaced_tags_changed)
    after = _strings(element)
    if code == "K":
        return "" if _kept_but_scrubbed(before, after, identifying) else "changed although kept"
    if code == "C":
        return "" if not before or vr not in ("DA", "DT") or after != before else "still holds its original date"
    if not before:
        return ""
    if not after:
        return "" if code in _MAY_BE_EMPTY else "emptied instead of given a dummy value"
    if after == before and not (code == "U" and all(v.startswith(tags.STANDARD_UID_ROOT) for v in before)):
        # An original that was already a placeholder (a date of 19000101) may be the dummy written in its place.
        return "" if all(tags.is_placeholder(v) for v in before) else "still holds its original value"
    return ""


def _kept_but_scrubbed(before: list[str], after: list[str], identifying: dict[str, str]) -> bool:
    """A kept (K) value is unchanged, or changed only where it repeated a known identifying value, which the scrub
    replaces wherever it occurs (a GantryID equal to the StationName); the byte scan checks that value is gone."""
    if len(after) != len(before):
        return False
    return all(
        new == old or any(_scrubbed_within(known, old) for known in identifying)
        for old, new in zip(before, after, strict=True)
    )


def _scrubbed_within(known: str, value: str) -> bool:
    """`known` occurs in `value` where the scrub replaces it, by the byte scan's rule (_scan_pattern)."""
    pattern = _scan_pattern(known)
    return pattern is not None and pattern.search(value.encode("utf_8")) is not None


def _profile_failures(
    facts: Facts, dataset: pydicom.Dataset, policy: Policy | None, relpath: str, after: dict
) -> list[str]:
    """Profile basic: every attribute of Table E.1-1 in the input holds its action in the output."""
    if policy is None or policy.profile != "basic":
        return []
    table, options, kept = load_profile_table(), frozenset(policy.basic_options), _kept(policy)
    failures = []
    for path, (vr, before) in facts.profile.items():
        if path[-1] in kept or _ancestor_gone(path, after):
            continue
        # The 4 attributes of the workflow's rule go whatever an option says (Occupation is C with Clean Descriptors).
        code = "X" if path[-1] in _REMOVED else table.row_for(path[-1]).action(options)
        problem = _action_problem(code, path[-1], vr, before, after.get(path), facts.identifying)
        if problem:
            failures.append(f"{relpath}: {keyword_for_tag(path[-1]) or path[-1]} {problem} (Table E.1-1: {code})")
    return failures + _method_failures(dataset, options, relpath)


def _method_failures(dataset: pydicom.Dataset, options: frozenset[str], relpath: str) -> list[str]:
    """The output must say what was done: identity removed, and the CID 7050 code of the profile and each option."""
    failures = []
    if dataset.get("PatientIdentityRemoved") != "YES":
        failures.append(f"{relpath}: PatientIdentityRemoved is not YES")
    codes = {str(item.get("CodeValue", "")) for item in dataset.get("DeidentificationMethodCodeSequence", [])}
    wanted = {BASIC_PROFILE_CODE[0]} | {OPTION_CODES[o][0] for o in options}
    if not wanted <= codes:
        failures.append(f"{relpath}: DeidentificationMethodCodeSequence lacks {sorted(wanted - codes)}")
    return failures


def _file_framing_failures(dataset: pydicom.Dataset, content: bytes, relpath: str) -> list[str]:
    """The file meta describes the written file and its writer only, the preamble is zeros and there is no trailing
    padding (PS3.10 7.1): nothing of the original's journey (AE titles of its sending PACS, private information,
    a writer's bytes) is carried over."""
    failures = [
        f"{relpath}: file meta keeps {element.keyword or element.tag} of the original"
        for element in dataset.file_meta
        if element.keyword not in tags.FILE_META_WRITTEN
    ]
    if _has_preamble(content) and content[:128].strip(b"\0"):
        failures.append(f"{relpath}: preamble is not zeros")
    if tags.TRAILING_PADDING in dataset:
        failures.append(f"{relpath}: trailing padding kept")
    return failures


def _private_policy_failures(dataset: pydicom.Dataset, policy: Policy | None, relpath: str) -> list[str]:
    if policy is None or policy.private_tags == "keep":
        return []
    if policy.private_tags == "remove":
        left = [tag for _, tag, _ in walk_private(dataset, EVERY_PRIVATE)]
    else:
        left = [tag for _, tag, safe in walk_private(dataset, load_safe_private()) if not safe]
    return [f"{relpath}: private element {tag} left with private_tags: {policy.private_tags}" for tag in left]


def _names_a_thing(tag) -> bool:
    return tag in _NAMING or (tag.is_private and 0x10 <= tag.element <= 0xFF)


def _value_spans(dataset: pydicom.Dataset, spans: dict, wanted=None, prefix: tuple = ()) -> list[tuple]:
    """One walk of the parsed output, at every depth: adds to `spans` where the values of naming attributes,
    person names and the replaced attributes lie in the parsed stream, by path (read before anything is decoded:
    a decoded element no longer knows where its value lies), and returns [(path, element)] of the elements
    `wanted(tag, vr)` accepts, decoded."""
    selected = []
    for tag, stored in dataset.items():  # items() leaves values undecoded
        vr = stored_vr(stored)
        path = (*prefix, tag)
        if _names_a_thing(tag) or tag in _REPLACED or vr == "PN":
            if isinstance(stored, RawDataElement) and stored.value_tell is not None:
                spans[path] = (stored.value_tell, stored.value_tell + stored.length)
        if vr == "SQ":
            element = dataset[tag]
            if element.VR == "SQ":
                for index, item in enumerate(element.value):
                    selected += _value_spans(item, spans, wanted, (*path, index))
        elif wanted is not None and wanted(tag, vr):
            selected.append((path, dataset[tag]))
    return selected


def _masked(parsed: bytes, start: int, end: int, blanked: list[tuple[int, int]]) -> bytes:
    """parsed[start:end] with the blanked spans zeroed; copies only that part (pixel data can be 100s of MB)."""
    inside = [(max(a, start), min(b, end)) for a, b in blanked if a < end and b > start]
    if not inside:
        return parsed[start:end]
    part = bytearray(parsed[start:end])
    for a, b in inside:
        part[a - start : b - start] = bytes(b - a)
    return bytes(part)


def _split_parsed(content: bytes, transfer_syntax: str) -> tuple[bytes, bytes]:
    """(bytes before the dataset's stream, the stream pydicom parsed, in which value_tell counts).

    For the deflated transfer syntax the stream is the inflated dataset after the file meta (which this
    workflow always writes with preamble and group length), so the scan sees the values, not zlib's bytes.
    """
    if transfer_syntax != DeflatedExplicitVRLittleEndian:
        return b"", content
    meta_end = _meta_end(content)
    return content[:meta_end], zlib.decompress(content[meta_end:], -zlib.MAX_WBITS)


def _has_preamble(content: bytes) -> bool:
    """The file starts with the 128-byte preamble and DICM, as written (an original read with force=True may not)."""
    return content[128:132] == b"DICM"


def _meta_end(content: bytes) -> int:
    return 144 + int.from_bytes(content[140:144], "little")  # 128 preamble, DICM, (0002,0000) UL, its value


_UID_LIKE = re.compile(r"[0-9]+(\.[0-9]+)+")


def _uid(needle: bytes) -> re.Pattern:
    return re.compile(tags.whole_uid(needle))


def _uid_in_name(needle: bytes) -> re.Pattern:
    return re.compile(tags.whole_uid_in_name(needle))


def _scan_pattern(value: str, uid=_uid, encoding: str = "utf_8") -> re.Pattern | None:
    """How `value` is looked for in bytes (UTF-8 unless `encoding`) outside the full scan of check_output: not at
    all under tags.MIN_SCAN_LENGTH, a UID only whole (`uid`), a value under tags.ANYWHERE_SCAN_LENGTH only as a
    whole word, a longer one anywhere."""
    length = tags.scan_length(value)
    if length < tags.MIN_SCAN_LENGTH:
        return None
    needle = value.encode(encoding)
    if _UID_LIKE.fullmatch(value):
        return uid(needle)
    if length < tags.ANYWHERE_SCAN_LENGTH:
        return _token(needle)
    return re.compile(re.escape(needle))


def _token(needle: bytes) -> re.Pattern:
    return re.compile(tags.whole_word(needle))


def check_file(source: Path, output: Path, relpath: str, policy: Policy | None = None) -> dict[str, list[str]]:
    """Compare one output file with its original on disk (for tests and re-checks)."""
    return check_output(original_facts(read_instance(source, relpath), policy), output.read_bytes(), relpath, policy)
