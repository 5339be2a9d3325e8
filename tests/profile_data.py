"""Values planted into every attribute of Table E.1-1 that a file can hold, for the basic profile's tests.

Every public attribute of the table with a concrete tag, outside the file meta, command, DICOMDIR and signature
groups, gets a VR-valid value unique to it (where the file has none already); every sequence of the table gets
one item holding a planted name. Values are long and odd enough not to occur by chance in any file.
"""

from __future__ import annotations

from dataclasses import dataclass

import pydicom
from pydicom.datadict import dictionary_VM, dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicom_deid.profile_table import load_profile_table

# Groups a dataset in a file does not hold: command (0000), file meta (0002), DICOMDIR (0004), and the digital
# signature and trailing padding elements (FFFA, FFFC).
_NOT_IN_A_DATASET = (0x0000, 0x0002, 0x0004, 0xFFFA, 0xFFFC)
PERSON_NAME = 0x0040A123  # PersonName, D in the table: the planted content of every planted sequence


@dataclass(frozen=True)
class Planted:
    keyword: str
    text: str  # as it would appear in the file's bytes ("" for values too short or binary to search for)


def _value(vr: str, number: int):
    """A VR-valid value unique to the attribute numbered `number`, and the text to search the output for."""
    tag = f"{number:04d}"
    texts = {
        "PN": f"PLANTEDPN{tag}^ZEPHYRINE",
        "LO": f"PLANTED LONG {tag} TEXT",
        "LT": f"PLANTED LONGTEXT {tag}",
        "ST": f"PLANTED SHORTTEXT {tag}",
        "UT": f"PLANTED UNLIMITED {tag}",
        "UC": f"PLANTED UC {tag}",
        "SH": f"PLSH{tag}QX",
        "CS": f"PLCS{tag}QX",
        "AE": f"PLAE{tag}QX",
        "UR": f"http://planted.invalid/{tag}",
        "UI": f"1.2.826.0.1.3680043.8.498.7777{tag}",
    }
    if vr in texts:
        return texts[vr], texts[vr]
    fixed = {"DA": "20190301", "TM": "101112", "DT": "20190301101112", "AS": "045Y", "DS": "12.5", "IS": "7"}
    if vr in fixed:
        return fixed[vr], ""
    if vr in ("US", "SS", "UL", "SL", "SV", "UV"):
        return 7, ""
    if vr in ("FL", "FD"):
        return 1.5, ""
    if vr in ("OB", "OW", "UN"):
        return f"PLANTEDBIN{tag}".encode(), f"PLANTEDBIN{tag}"
    if vr == "AT":
        return 0x00100010, ""
    return None, ""


def plant_every_attribute(dataset: Dataset) -> list[Planted]:
    """Add a value to every attribute of the table the dataset lacks; the values planted, by attribute."""
    planted = []
    for number, (tag, row) in enumerate(sorted(load_profile_table().by_tag.items())):
        if tag >> 16 in _NOT_IN_A_DATASET or tag in dataset:
            continue
        try:
            vr, vm = dictionary_VR(tag), dictionary_VM(tag)
        except KeyError:
            continue
        vr = vr.split(" or ")[0]
        if vr == "SQ":
            item = Dataset()
            name, text = _value("PN", number)
            item.add_new(PERSON_NAME, "PN", name)
            dataset.add_new(tag, "SQ", Sequence([item]))
            planted.append(Planted(f"{row.keyword} item", text))
            continue
        value, text = _value(vr, number)
        if value is None:
            continue
        if vm not in ("1", "1-n", "1-n or 1", "1-3", "1-2") and vr not in ("OB", "OW", "UN"):
            continue  # fixed multiplicities (e.g. 2, 3): a single value would be invalid
        dataset.add_new(tag, vr, value)
        planted.append(Planted(row.keyword, text))
    return planted


def searchable(planted: list[Planted]) -> list[Planted]:
    return [p for p in planted if len(p.text) >= 8]


def read_back(path) -> Dataset:
    return pydicom.dcmread(path)
