"""The one module that imports dicognito: its seeded Anonymizer, the handlers the workflow adds, and every use of
dicognito's internals (tests/test_dicognito_adapter.py names each one, so an upgrade that moves them fails there).

The workflow adds handlers to dicognito's chain: the 4 removed attributes are stripped (dicognito itself replaces
three of them), malformed dates are emptied (dicognito stops on them), InstitutionAddress alone and an original
department of RADIOLOGY are replaced (dicognito leaves both), and a fast path skips the chain for elements no
handler changes (most of dicognito's cost). Internals used: Anonymizer._element_handlers,
_anonymize_element and _dataset_updaters (to walk without decoding untouched elements); the selection attributes
of IDAnonymizer, AddressAnonymizer, EquipmentAnonymizer, FixedValueAnonymizer and ValueKeeper (to know what each
handler touches); AddressAnonymizer's word lists (the fake words it writes); DateTimeAnonymizer.offset (set per
subject before each dataset is walked, see date_offset_days).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections import Counter

import pydicom
from dicognito.addressanonymizer import AddressAnonymizer
from dicognito.anonymizer import Anonymizer
from dicognito.datetimeanonymizer import DateTimeAnonymizer
from dicognito.element_anonymizer import ElementAnonymizer
from dicognito.equipmentanonymizer import EquipmentAnonymizer
from dicognito.fixedvalueanonymizer import FixedValueAnonymizer
from dicognito.idanonymizer import IDAnonymizer
from dicognito.pnanonymizer import PNAnonymizer
from dicognito.randomizer import Randomizer
from dicognito.uianonymizer import UIAnonymizer
from dicognito.unwantedelements import UnwantedElementsStripper
from dicognito.value_keeper import ValueKeeper
from pydicom.dataelem import RawDataElement

from dicom_deid import tags

_TIME = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")
_DATETIME = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?")


def _values(element: pydicom.DataElement) -> list[str]:
    value = element.value
    if isinstance(value, pydicom.multival.MultiValue):
        return [str(v) for v in value]
    return [str(value)]


def _valid_date(value: str) -> bool:
    value = value.replace(".", "")  # ACR-NEMA style dates, which dicognito accepts
    try:
        datetime.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return len(value) == 8


def _valid_time(value: str) -> bool:
    value = value.replace(":", "").strip()
    return not value or (_TIME.fullmatch(value) is not None and int(value[:2]) < 24)


def _valid_datetime(value: str) -> bool:
    value = value.strip()
    if _DATETIME.fullmatch(value) is None:
        return False
    digits = value.split("+")[0].split("-")[0]
    # dicognito parses the first 4, 6, 8 or 10 characters; other lengths make it fail.
    return len(digits) in (4, 6, 8) or (len(digits) >= 10 and _valid_date(digits[:8]) and int(digits[8:10]) < 24)


class MalformedDateCleaner(ElementAnonymizer):
    """Empties DA, DT and paired TM values that are not valid DICOM, so dicognito's date shift cannot fail.

    Runs before dicognito's handlers and returns False, so they still see (and shift) the element.
    """

    def __init__(self) -> None:
        self.emptied: Counter[str] = Counter()

    def _empty(self, element: pydicom.DataElement) -> None:
        element.value = ""
        self.emptied[element.keyword or str(element.tag)] += 1

    def __call__(self, dataset: pydicom.Dataset, data_element: pydicom.DataElement) -> bool:
        if data_element.VR not in ("DA", "DT") or not data_element.value:
            return False
        if data_element.VR == "DT":
            if not all(_valid_datetime(v) for v in _values(data_element)):
                self._empty(data_element)
            return False
        if not all(_valid_date(v) for v in _values(data_element)):
            self._empty(data_element)
            return False
        time_keyword = data_element.keyword.replace("Date", "Time")
        time_element = dataset.data_element(time_keyword) if time_keyword in dataset else None
        if time_element is not None and time_element.value:
            if not all(_valid_time(v) for v in _values(time_element)):
                self._empty(time_element)
        return False

    def describe_actions(self):
        yield "Empty malformed DA, DT and paired TM values"


class LoneInstitutionAddress(ElementAnonymizer):
    """dicognito replaces InstitutionAddress only beside an InstitutionName; this covers it alone."""

    TAG = pydicom.datadict.tag_for_keyword("InstitutionAddress")

    def __init__(self, randomizer: Randomizer) -> None:
        self.addresses = AddressAnonymizer(randomizer)

    def __call__(self, dataset: pydicom.Dataset, data_element: pydicom.DataElement) -> bool:
        if data_element.tag != self.TAG or "InstitutionName" in dataset:
            return False
        original = str(data_element.value or "")
        if original:
            data_element.value = ", ".join(
                [
                    self.addresses.get_street_address(original),
                    self.addresses.get_region(original),
                    self.addresses.get_country(original),
                ]
            )
        return True

    def describe_actions(self):
        yield "Replace InstitutionAddress with anonymized values (also without InstitutionName)"


class DepartmentName(ElementAnonymizer):
    """dicognito sets InstitutionalDepartmentName to RADIOLOGY; an original RADIOLOGY would stay unchanged."""

    OUTPUTS = tags.DEPARTMENT_PSEUDONYMS
    TAG = pydicom.datadict.tag_for_keyword("InstitutionalDepartmentName")

    def __call__(self, dataset: pydicom.Dataset, data_element: pydicom.DataElement) -> bool:
        if data_element.tag != self.TAG:
            return False
        if data_element.value:
            usual, alternative = self.OUTPUTS
            data_element.value = alternative if str(data_element.value).strip().upper() == usual else usual
        return True

    def describe_actions(self):
        yield "Replace InstitutionalDepartmentName with RADIOLOGY (IMAGING where it was RADIOLOGY)"


def pseudonymous_uid(seed: str, uid: str) -> str:
    """A UUID-derived UID (PS3.5 B.2): "2.25." and a 128-bit UUID (version 8, custom) made from the key and
    the original UID; the same in every job and run with the same key, at most 44 characters."""
    digest = int.from_bytes(hmac.new(seed.encode(), uid.encode(), hashlib.sha256).digest()[:16], "big")
    digest = (digest & ~(0xF << 76)) | (0x8 << 76)  # version 8
    digest = (digest & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return f"2.25.{digest}"


class UidRemapper(ElementAnonymizer):
    """Remaps every UID to a valid UUID-derived UID, except those that name standard or vendor things (tags.py).

    Runs before dicognito's UIAnonymizer, whose "2." + 40 digits dciodvfy rejects ("non-existent Joint ISO/ITU-T
    arc"), and which remaps coding scheme and private creator UIDs too.
    """

    def __init__(self, seed: str) -> None:
        self.seed = seed

    def __call__(self, dataset: pydicom.Dataset, data_element: pydicom.DataElement) -> bool:
        if data_element.VR != "UI":
            return False
        if data_element.value:
            keyword = pydicom.datadict.keyword_for_tag(data_element.tag)
            values = _values(data_element)
            new = [v if tags.uid_is_kept(keyword, v) or not v else pseudonymous_uid(self.seed, v) for v in values]
            data_element.value = new if len(new) > 1 else new[0]
        return True  # handled: dicognito's UIAnonymizer must not remap it again

    def describe_actions(self):
        yield "Replace instance UIDs with UUID-derived UIDs (2.25.), keeping class, syntax and scheme UIDs"


# VRs a dictionary entry may hold that are a single VR (not "US or SS" and the like).
_SINGLE_VRS = frozenset(pydicom.valuerep.VR.__members__)
SPECIFIC_CHARACTER_SET = 0x00080005


class SkipUntouched(ElementAnonymizer):
    """Fast path: ends the handler chain for elements that no handler of the chain would change.

    dicognito asks each of its ~14 handlers about every element, with tag comparisons written in Python;
    that is most of its cost. The handlers select elements by VR (UI, PN, DA, DT) or by fixed tags, so an
    element with another VR and none of those tags can skip them. Built from the handlers themselves, and
    only when every handler is of a kind whose selection is known (tests compare outputs with and without).
    """

    VRS = frozenset({"UI", "PN", "DA", "DT"})
    MITRA_GROUP = 0x0031  # dicognito's IDAnonymizer also looks at this private group

    def __init__(self, handled_tags: set[int]) -> None:
        self.handled_tags = frozenset(int(tag) for tag in handled_tags)

    @classmethod
    def for_handlers(cls, handlers) -> SkipUntouched | None:
        """Built from what each handler selects; None (no fast path) when a handler is of an unknown kind."""
        tags_: set[int] = set()
        for handler in handlers:
            if isinstance(
                handler, UIAnonymizer | UidRemapper | PNAnonymizer | DateTimeAnonymizer | MalformedDateCleaner
            ):
                continue  # select by VR only
            elif isinstance(handler, UnwantedElementsStripper):
                tags_.update(handler.tags)
            elif isinstance(handler, IDAnonymizer):
                tags_.update([*handler.id_tags, handler.issuer_tag])
            elif isinstance(handler, AddressAnonymizer):
                tags_.update(handler._value_factories)
            elif isinstance(handler, EquipmentAnonymizer):
                tags_.update(handler._element_anonymizers)
            elif isinstance(handler, FixedValueAnonymizer):
                tags_.add(handler.tag)
            elif isinstance(handler, ValueKeeper):
                tags_.add(handler._tag)
            elif isinstance(handler, LoneInstitutionAddress | DepartmentName):
                tags_.add(handler.TAG)
            else:
                return None
        return cls(tags_)

    def _untouched(self, tag, vr: str) -> bool:
        """No handler of the chain selects this VR or this tag."""
        return vr not in self.VRS and int(tag) not in self.handled_tags and tag.group != self.MITRA_GROUP

    def __call__(self, dataset: pydicom.Dataset, data_element: pydicom.DataElement) -> bool:
        return self._untouched(data_element.tag, data_element.VR)

    def untouched_raw(self, tag, raw) -> bool:
        """True for a still-undecoded element that no handler would change: it need not be decoded at all,
        and pydicom then writes its original bytes as they are."""
        if not isinstance(raw, RawDataElement) or tag == SPECIFIC_CHARACTER_SET:
            return False  # SpecificCharacterSet is decoded, so pydicom knows the encoding of the rest
        # Implicit VR (no VR in the file) and UN are decoded: the writer may need to give them a VR.
        vr = raw.VR
        return vr in _SINGLE_VRS and vr not in ("UN", "SQ") and self._untouched(tag, vr)

    def describe_actions(self):
        yield from ()


# dicognito's own range of date offsets (Anonymizer.__init__: 62 to 730 days back, there in hours).
MIN_OFFSET_DAYS, MAX_OFFSET_DAYS = 62, 730
DATE_SHIFTS = ("per_subject", "global")


def date_offset_days(seed: str, patient_id: str) -> int:
    """The subject's date offset in whole days, -730 < offset <= -62, from the key and the original PatientID.

    One offset per subject (not dicognito's one for everybody): a recipient who learns one real scan date learns
    that subject's offset only. Whole days keep every interval inside the subject exactly, times of day included,
    also for a date whose time is elsewhere or absent. An empty PatientID gets the offset of "" like any other.
    """
    message = f"date-offset:{patient_id}".encode()
    number = int.from_bytes(hmac.new(seed.encode(), message, hashlib.sha256).digest()[:8], "big")
    return -(number % (MAX_OFFSET_DAYS - MIN_OFFSET_DAYS) + MIN_OFFSET_DAYS)


def original_patient_id(dataset: pydicom.Dataset) -> str:
    return str(dataset.get("PatientID", "") or "").strip()


class DicognitoAnonymizer:
    """dicognito's Anonymizer seeded with the key, plus the workflow's handlers. One per process: building it
    imports and seeds dicognito once, not once per file."""

    def __init__(self, seed: str, date_shift: str, keep: tuple[str, ...] = (), fast_path: bool = True) -> None:
        if date_shift not in DATE_SHIFTS:
            raise ValueError(f"date_shift must be one of {DATE_SHIFTS}, not {date_shift!r}")
        self.seed, self.date_shift = seed, date_shift
        self.anonymizer = Anonymizer(id_prefix="", id_suffix="", seed=seed)
        self.dates = next(h for h in self.anonymizer._element_handlers if isinstance(h, DateTimeAnonymizer))
        self.global_offset = self.dates.offset  # dicognito's single offset, derived from the seed
        self.date_cleaner = MalformedDateCleaner()
        # add_element_handler puts each handler first; the last added runs first.
        self.anonymizer.add_element_handler(DepartmentName())
        self.anonymizer.add_element_handler(LoneInstitutionAddress(Randomizer(seed)))
        self.anonymizer.add_element_handler(UnwantedElementsStripper(*tags.REMOVED))
        self.anonymizer.add_element_handler(UidRemapper(seed))
        self.fast_path = SkipUntouched.for_handlers(self.anonymizer._element_handlers) if fast_path else None
        if self.fast_path is not None:
            self.anonymizer.add_element_handler(self.fast_path)
        self.anonymizer.add_element_handler(self.date_cleaner)
        for keyword in keep:
            self.anonymizer.add_element_handler(ValueKeeper(keyword))

    def offset(self, patient_id: str) -> datetime.timedelta:
        """The date offset anonymize() applies to a dataset whose original PatientID is this."""
        if self.date_shift == "global":
            return self.global_offset
        return datetime.timedelta(days=date_offset_days(self.seed, patient_id))

    def anonymize(self, dataset: pydicom.Dataset) -> dict[str, int]:
        """Anonymize in place (file meta included); return how many malformed values of each keyword were emptied."""
        self.date_cleaner.emptied.clear()
        # Set before the walk: every date of the file moves by its subject's offset (read before PatientID changes).
        self.dates.offset = self.offset(original_patient_id(dataset))
        if self.fast_path is None:
            self.anonymizer.anonymize(dataset)
        else:
            # dicognito's anonymize(), with a walk that leaves untouched elements undecoded.
            dataset.file_meta.walk(self.anonymizer._anonymize_element)
            self._walk(dataset)
            for updater in self.anonymizer._dataset_updaters:
                updater(dataset)
        return dict(self.date_cleaner.emptied)

    def _walk(self, dataset: pydicom.Dataset) -> None:
        """pydicom's Dataset.walk, minus decoding the elements SkipUntouched says no handler changes."""
        handle = self.anonymizer._anonymize_element
        for tag in sorted(dataset.keys()):
            if self.fast_path.untouched_raw(tag, dataset.get_item(tag)):
                continue
            element = dataset[tag]
            handle(dataset, element)
            if tag in dataset and element.VR == "SQ":  # a handler may have deleted it
                for item in element.value:
                    self._walk(item)
