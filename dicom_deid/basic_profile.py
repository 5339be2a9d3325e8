"""The Basic Application Level Confidentiality Profile (PS3.15 Annex E, Table E.1-1) applied action by action.

Runs after dicognito (names replaced, dates shifted, UIDs remapped, the 13 given pseudonyms) and the private-tag
policy, before the scrub of known values. For every attribute of the table, at every depth, the action of the
table under the options in use:
  X  removed;                    Z  emptied;                     D  a dummy value;
  K  kept: the original value, restored where dicognito shifted or remapped it (CalibrationDate, DeviceUID);
  C  cleaned: dates keep their per-subject shift, text is kept for the scrub;
  U  new UIDs: the adapter remapped the instance UIDs already; the few the workflow's rule keeps as naming
     vendor things (tags.uid_is_kept: Manufacturer's Device Class UID, ...) are remapped here, as the table says;
  X/Z, X/D, X/Z/D, Z/D, X/Z/U*: by the attribute's Type in the image IODs met (tags.PROFILE_TYPE_1 and _2):
  D for Type 1, Z for Type 2 (U for a sequence of references), otherwise the first code.
The 13 attributes keep their consistent pseudonyms wherever the table allows a dummy value (Z, D, K, C and the
combined codes), and are removed where it says X. Private elements are the private policy's: the safe list with
Retain Safe Private, none without. Imports no dicognito.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicom_deid import tags
from dicom_deid.dicomfile import stored_vr
from dicom_deid.profile_table import BASIC_PROFILE_CODE, OPTION_CODES, ProfileTable, load_profile_table

PROFILES = ("minimal", "basic")
_PSEUDONYMS = frozenset(tag_for_keyword(k) for k in tags.REPLACED)
_REMOVED = frozenset(tag_for_keyword(k) for k in tags.REMOVED)
_TYPE_1 = frozenset(tag_for_keyword(k) for k in tags.PROFILE_TYPE_1)
_TYPE_2 = frozenset(tag_for_keyword(k) for k in tags.PROFILE_TYPE_2)
_OVERLAY_DATA = 0x3000

# Dummy values by VR: they carry nothing of the original, and are valid for the VR.
_TEXT_DUMMY = "ANONYMIZED"
_DUMMIES = {
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "PN": "ANONYMOUS",
    "AS": "000D",
    "DS": "0",
    "IS": "0",
}
_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "AT"})
_BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
# Dates, times and date-times whose presence tells that dates moved (LongitudinalTemporalInformationModified).
_DATE_KEYWORDS = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "AcquisitionDateTime")


def concrete_action(code: str, tag: int) -> str:
    """One of X, Z, D, K, C, U for an action code of the table (after options), for this attribute."""
    if tag in _PSEUDONYMS:
        return "X" if code == "X" else "D"  # a consistent pseudonym is a dummy value, allowed by all but X
    if tag in _REMOVED:
        return "X"  # the workflow's 4 go whatever an option says (Occupation is C with Clean Descriptors)
    if "/" not in code:
        return code
    choices = code.replace("*", "").split("/")  # X/Z/U*: a sequence whose references are remapped
    wanted = ("D", "U") if tag in _TYPE_1 else ("Z", "U") if tag in _TYPE_2 else ()
    return next((c for c in choices if c in wanted), choices[0])


def dummy_value(vr: str):
    if vr in _DUMMIES:
        return _DUMMIES[vr]
    if vr in _NUMBER_VRS:
        return 0
    if vr in _BINARY_VRS:
        return b"\x00\x00"
    return _TEXT_DUMMY


class BasicProfile:
    """The table and the options in use; one per worker process."""

    def __init__(
        self, options: tuple[str, ...] | frozenset[str], remap_uid: Callable[[str], str], keep: tuple[str, ...] = ()
    ) -> None:
        unknown = set(options) - set(OPTION_CODES)
        if unknown:
            raise ValueError(f"basic profile options not offered: {sorted(unknown)}")
        self.options = frozenset(options)
        self.table: ProfileTable = load_profile_table()
        self.kept = frozenset(tag_for_keyword(k) for k in keep)
        self.remap_uid = remap_uid  # the adapter's: the same new UID for the same original, in every job

    def to_keep(self, dataset: Dataset, prefix: tuple = ()) -> dict[tuple, object]:
        """Call on the original: {path: value} of every attribute the options keep (K), for apply() to restore."""
        found = {}
        for tag in sorted(dataset.keys()):
            if tag.is_private:
                continue
            row = self.table.row_for(tag)
            if row is not None and tag not in _PSEUDONYMS and row.action(self.options) == "K":
                element = dataset[tag]
                if element.VR != "SQ":
                    found[(*prefix, tag)] = element.value
            elif _is_sequence(dataset, tag) and dataset[tag].VR == "SQ":
                for index, item in enumerate(dataset[tag].value):
                    found.update(self.to_keep(item, (*prefix, tag, index)))
        return found

    def apply(self, dataset: Dataset, originals: dict[tuple, object] | None = None) -> Counter:
        """Apply the table in place at every depth; how many attributes got each action (X, Z, D, K, C, U).

        `originals`: to_keep() of the original dataset, so that K restores what dicognito changed."""
        counts: Counter = Counter()
        self._apply_level(dataset, counts, originals or {}, ())
        return counts

    def _apply_level(self, dataset: Dataset, counts: Counter, originals: dict, prefix: tuple) -> None:
        overlays_removed = set()
        for tag in sorted(dataset.keys()):
            if tag.is_private:
                continue  # the private policy decides (safe list with Retain Safe Private, else none)
            row = self.table.row_for(tag)
            if row is None or tag in self.kept:
                if _is_sequence(dataset, tag):
                    self._enter(dataset, tag, counts, originals, prefix)
                continue
            action = concrete_action(row.action(self.options), int(tag))
            counts[action] += 1
            if action == "X":
                del dataset[tag]
                if tag.group & 0xFF00 == 0x6000 and tag.element == _OVERLAY_DATA:
                    overlays_removed.add(tag.group)
            elif action == "Z":
                self._empty(dataset, tag)
            elif action == "D":
                self._dummy(dataset, tag, counts, originals, prefix)
            elif _is_sequence(dataset, tag):  # K, C, U: a kept sequence is cleaned item by item
                self._enter(dataset, tag, counts, originals, prefix)
            elif action == "K" and (*prefix, tag) in originals:
                dataset[tag].value = originals[(*prefix, tag)]
            elif action == "U":
                self._remap_kept_uids(dataset[tag])
        # An overlay without its data breaks the Overlay Plane module: the rest of its group goes too.
        for tag in [t for t in dataset.keys() if t.group in overlays_removed]:  # noqa: SIM118
            del dataset[tag]

    def _enter(self, dataset: Dataset, tag, counts: Counter, originals: dict, prefix: tuple) -> None:
        element = dataset[tag]
        if element.VR == "SQ":
            for index, item in enumerate(element.value):
                self._apply_level(item, counts, originals, (*prefix, tag, index))

    def _remap_kept_uids(self, element) -> None:
        if element.VR != "UI" or not element.value:
            return
        values = element.value if isinstance(element.value, pydicom.multival.MultiValue) else [element.value]
        new = [v if v.startswith((tags.STANDARD_UID_ROOT, "2.25.")) else self.remap_uid(v) for v in values]
        element.value = new if len(new) > 1 else new[0]

    @staticmethod
    def _empty(dataset: Dataset, tag) -> None:
        element = dataset[tag]
        element.value = Sequence() if element.VR == "SQ" else None

    def _dummy(self, dataset: Dataset, tag, counts: Counter, originals: dict, prefix: tuple) -> None:
        element = dataset[tag]
        if element.VR == "SQ":  # a dummy sequence: its items, cleaned by the table in turn
            self._enter(dataset, tag, counts, originals, prefix)
        elif tag in _PSEUDONYMS or (element.VR in ("PN", "UI") and element.value):
            pass  # the workflow's pseudonym, dicognito's fake name, or the adapter's new UID
        else:
            element.value = dummy_value(element.VR)


def _is_sequence(dataset: Dataset, tag) -> bool:
    return stored_vr(dataset.get_item(tag, keep_deferred=True)) == "SQ"


def _code_item(code: tuple[str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code[0], "DCM", code[1]
    return item


def dates_moved(dataset: Dataset, keep: tuple[str, ...]) -> bool:
    return any(dataset.get(keyword) for keyword in _DATE_KEYWORDS if keyword not in keep)


def record_method(dataset: Dataset, profile: str, options: frozenset[str], moved: bool) -> None:
    """What was done, in the attributes PS3.3 C.12.1 has for it. `moved`: the original held dates that moved."""
    if profile == "basic":
        edition = load_profile_table().edition
        codes = [BASIC_PROFILE_CODE, *(OPTION_CODES[o] for o in sorted(options, key=list(OPTION_CODES).index))]
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = [f"{edition} Basic Profile", *(meaning for _, meaning in codes[1:])]
        dataset.DeidentificationMethodCodeSequence = Sequence([_code_item(code) for code in codes])
        if "retain_long_modified_dates" not in options:
            dataset.LongitudinalTemporalInformationModified = "REMOVED"
            return
    if moved:
        dataset.LongitudinalTemporalInformationModified = "MODIFIED"
