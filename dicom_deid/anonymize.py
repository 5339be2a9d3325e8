"""Anonymize DICOM instances with dicognito, remove the 4 unwanted tags, and repair values dicognito chokes on.

One `SessionAnonymizer` per process: building it imports and seeds dicognito once, not once per file.
"""

from __future__ import annotations

import datetime
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from dicognito.addressanonymizer import AddressAnonymizer
from dicognito.anonymizer import Anonymizer
from dicognito.element_anonymizer import ElementAnonymizer
from dicognito.randomizer import Randomizer
from dicognito.unwantedelements import UnwantedElementsStripper

from dicom_deid import tags
from dicom_deid.dicomfile import BadDicom, DicomDir, NotDicom, read_instance

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
    return len(digits) in (4, 6, 8) or len(digits) >= 10 and _valid_date(digits[:8]) and int(digits[8:10]) < 24


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

    def __init__(self, randomizer: Randomizer) -> None:
        self.addresses = AddressAnonymizer(randomizer)

    def __call__(self, dataset: pydicom.Dataset, data_element: pydicom.DataElement) -> bool:
        if data_element.keyword != "InstitutionAddress" or "InstitutionName" in dataset:
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

    OUTPUTS = ("RADIOLOGY", "IMAGING")

    def __call__(self, dataset: pydicom.Dataset, data_element: pydicom.DataElement) -> bool:
        if data_element.keyword != "InstitutionalDepartmentName":
            return False
        if data_element.value:
            usual, alternative = self.OUTPUTS
            data_element.value = alternative if str(data_element.value).strip().upper() == usual else usual
        return True

    def describe_actions(self):
        yield "Replace InstitutionalDepartmentName with RADIOLOGY (IMAGING where it was RADIOLOGY)"


@dataclass
class FileResult:
    """What happened to one file; `relpath` is its output path relative to the session folder."""

    relpath: str
    status: str  # "written", "skipped" (not DICOM), "dropped" (DICOMDIR), "bad"
    reason: str = ""
    repaired: dict[str, int] = field(default_factory=dict)


class SessionAnonymizer:
    def __init__(self, seed: str) -> None:
        self.anonymizer = Anonymizer(id_prefix="", id_suffix="", seed=seed)
        self.date_cleaner = MalformedDateCleaner()
        # add_element_handler puts each handler first; the last added runs first.
        self.anonymizer.add_element_handler(DepartmentName())
        self.anonymizer.add_element_handler(LoneInstitutionAddress(Randomizer(seed)))
        self.anonymizer.add_element_handler(UnwantedElementsStripper(*tags.REMOVED))
        self.anonymizer.add_element_handler(self.date_cleaner)

    def anonymize(self, dataset: pydicom.Dataset) -> dict[str, int]:
        """Anonymize in place; return how many malformed values of each keyword were emptied."""
        self.date_cleaner.emptied.clear()
        self.anonymizer.anonymize(dataset)
        return dict(self.date_cleaner.emptied)

    def process_file(self, source: Path, target: Path, relpath: str) -> FileResult:
        """Read `source`, anonymize it, and write it to `target` (atomically, via a temporary name)."""
        try:
            dataset = read_instance(source, relpath)
        except NotDicom as error:
            return FileResult(relpath, "skipped", str(error))
        except DicomDir as error:
            return FileResult(relpath, "dropped", str(error))
        except BadDicom as error:
            return FileResult(relpath, "bad", str(error))
        try:
            repaired = self.anonymize(dataset)
        except Exception as error:  # dicognito met a value it cannot handle; name the file, not the value
            return FileResult(relpath, "bad", f"{relpath}: anonymization failed ({type(error).__name__})")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        dataset.save_as(partial, enforce_file_format=True)
        os.replace(partial, target)
        return FileResult(relpath, "written", repaired=repaired)
