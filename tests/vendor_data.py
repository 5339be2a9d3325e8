"""Real vendor DICOM shipped inside installed packages, with identifying values planted where vendors hide them.

pydicom's own test files are mostly vendor-neutral. The files below are what real scanners wrote: Siemens
CSA headers (nibabel's DWI mosaics, where the b-value and gradient direction live only in private elements),
a Philips enhanced multi-frame with private 2001/2005 groups, GE private GEMS_* groups, a Siemens overlay
with a MedCom OOG blob. Planting puts identifying values in the standard attributes a de-identifier knows,
and in the descriptions and private places it may not: a CSA protocol string, a Philips private text,
a UTF-16-LE PatientID in a private OB. Tests search output bytes for every planted value.

No GE MR (DWI with 0043,xx private b-values), multiband, field map or XA enhanced file is shipped by any
installed package; see the registry's notes for what each file does exercise.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicom_deid.example_tree import Identity, identity_for

# Where planted bytes can turn up: the encodings a leak scan must try.
SEARCH_ENCODINGS = ("latin-1", "utf-8", "utf-16-le")

# A private block of our own for the UTF-16 history blob, so no real vendor element is overwritten.
HISTORY_GROUP = 0x0029
HISTORY_CREATOR = "PLANTED HISTORY UTF16"
HISTORY_OFFSET = 0x10

# Siemens' CSA headers: (0029,xx10) image, (0029,xx20) series; the series one holds the ASCII protocol.
CSA_GROUP = 0x0029
CSA_CREATOR = "SIEMENS CSA HEADER"
CSA_SERIES_OFFSET = 0x20
# ASCCONV lines whose quoted values dcm2niix does not read: planting there leaves its output unchanged.
CSA_PLANT_SLOTS = ("tProtocolName", "tReferenceImage0")

PHILIPS_GROUP = 0x2005
PHILIPS_CREATOR = "Philips MR Imaging DD 005"
PHILIPS_TEXT_OFFSET = 0x3A  # (2005,143A) LT, a free-text "datadefs" note in Philips' own files


@dataclass(frozen=True)
class PlantedValue:
    """One identifying value written into a file: where, what, and in which encoding its bytes are."""

    where: str
    text: str
    encoding: str = "latin-1"


class Planting(NamedTuple):
    data: bytes
    values: tuple[PlantedValue, ...]


@dataclass(frozen=True)
class VendorFile:
    """A real vendor DICOM found in an installed package."""

    load: Callable[[], bytes]
    vendor: str
    exercises: str
    # Files of one series share a session: dcm2niix writes b=1000 only for the b0 + b1000 pair
    # (the b1000 mosaic converted alone comes out with bval 0).
    session: str | None = None


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed: pip install -r requirements-test.txt")
    return Path(spec.submodule_search_locations[0])


def nibabel_data_dirs() -> tuple[Path, Path]:
    """nibabel's DICOM test data: nicom/tests/data (vendor files) and tests/data (0.dcm, 1.dcm)."""
    root = _package_dir("nibabel")
    return root / "nicom" / "tests" / "data", root / "tests" / "data"


def _nibabel_file(name: str) -> Callable[[], bytes]:
    def load() -> bytes:
        data = (nibabel_data_dirs()[0] / name).read_bytes()
        return gzip.decompress(data) if name.endswith(".gz") else data

    return load


def _pydicom_file(name: str) -> Callable[[], bytes]:
    return lambda: Path(get_testdata_file(name)).read_bytes()


def deid_data_file(relative: str) -> Callable[[], bytes]:
    return lambda: (_package_dir("deid_data") / "data" / relative).read_bytes()


VENDOR_FILES: dict[str, VendorFile] = {
    "siemens_dwi_b0": VendorFile(
        _nibabel_file("siemens_dwi_0.dcm.gz"),
        "Siemens TrioTim, syngo MR B17",
        "DWI mosaic b=0: CSA image and series headers (mosaic size, slice times, ASCII protocol); bval 0",
        session="siemens_dwi",
    ),
    "siemens_dwi_b1000": VendorFile(
        _nibabel_file("siemens_dwi_1000.dcm.gz"),
        "Siemens TrioTim, syngo MR B17",
        "DWI mosaic b=1000: b-value and gradient direction only in private CSA elements; bval/bvec",
        session="siemens_dwi",
    ),
    "philips_mprage": VendorFile(
        _nibabel_file("philips_mprage.dcm.gz"),
        "Philips Achieva (R3.2.2 enhanced phantom)",
        "Enhanced MR, 176 frames: functional groups, Philips 2001/2005 private groups and private sequences",
    ),
    "siemens_qt1_map": VendorFile(
        _nibabel_file("decimal_rescale.dcm"),
        "Siemens (private creators already anonymised to 'Anon')",
        "MR T1 map with a decimal rescale slope: scaling must survive",
    ),
    "siemens_mr_overlay": VendorFile(
        _pydicom_file("examples_overlay.dcm"),
        "Siemens syngo (MedCom OOG)",
        "MR with a 60xx overlay (dcm2niix writes an ROI NIfTI) and a MedCom OOG private blob holding a date",
    ),
    "ge_ct_small": VendorFile(
        _pydicom_file("CT_small.dcm"),
        "GE Medical Systems",
        "CT with nine GEMS_* private groups",
    ),
    "toshiba_mr_small": VendorFile(
        _pydicom_file("MR_small.dcm"),
        "Toshiba",
        "MR without private elements: the baseline",
    ),
    "siemens_ct_jpeg": VendorFile(
        deid_data_file("humans/ctbrain1.dcm"),
        "Siemens CT via Agfa PACS (deid-data)",
        "JPEG baseline CT with CSA, MedCom, MITRA and Agfa private blocks (deid-data planted dates there)",
    ),
}


def extra_values(identity: Identity) -> dict[str, str]:
    """Identifying values example_tree's identity lacks, derived from the same subject number."""
    number = identity.values["PatientID"][-4:]
    return {
        "ReferringPhysicianName": f"HIBBERT{number}^JULIUS^REFERRER",
        "OperatorsName": f"TECHNICIAN{number}^OPAL",
        "PerformingPhysicianName": f"RIVIERA{number}^NICK^PERFORMER",
    }


def _plant_csa(ds: Dataset, patient_id: str, station_name: str) -> list[PlantedValue]:
    """Overwrite the start of ASCCONV string values in the CSA series header, keeping every length.

    The CSA binary format stores each item's length: an equal-length change keeps it parseable by
    nibabel.nicom.csareader and by dcm2niix, just as a real protocol named after a patient would be.
    """
    try:
        block = ds.private_block(CSA_GROUP, CSA_CREATOR)
        element = block[CSA_SERIES_OFFSET]
    except KeyError:
        return []
    if not isinstance(element.value, bytes) or not element.value.startswith(b"SV10"):
        return []  # not a CSA2 header: deid-data's CT keeps dates in these slots
    blob = bytearray(element.value)
    planted = []
    for slot, text in zip(CSA_PLANT_SLOTS, (patient_id, station_name), strict=True):
        match = re.search(rb"\b" + slot.encode() + rb'\s*=\s*""([^"]+)""', blob)
        if match is None or len(match.group(1)) < len(text):
            continue
        start = match.start(1)
        blob[start : start + len(text)] = text.encode("ascii")
        planted.append(PlantedValue(f"CSA series header {slot}", text))
    element.value = bytes(blob)
    return planted


def _plant_philips(ds: Dataset, text: str) -> list[PlantedValue]:
    if not str(ds.get("Manufacturer", "")).lower().startswith("philips"):
        return []
    block = ds.private_block(PHILIPS_GROUP, PHILIPS_CREATOR, create=True)
    block.add_new(PHILIPS_TEXT_OFFSET, "LT", f"datadefs {text}")
    return [PlantedValue(f"({PHILIPS_GROUP:04X},xx{PHILIPS_TEXT_OFFSET:02X}) {PHILIPS_CREATOR}", text)]


def _plant_history(ds: Dataset, patient_id: str) -> list[PlantedValue]:
    """A MedCom-history-like OB holding the PatientID in UTF-16-LE: invisible to an ASCII-only scan."""
    block = ds.private_block(HISTORY_GROUP, HISTORY_CREATOR, create=True)
    history = f"<History><PatientID>{patient_id}</PatientID></History>".encode("utf-16-le")
    block.add_new(HISTORY_OFFSET, "OB", history)
    return [PlantedValue(f"({HISTORY_GROUP:04X},xx{HISTORY_OFFSET:02X}) {HISTORY_CREATOR}", patient_id, "utf-16-le")]


def planting(source: Dataset | bytes, identity: Identity) -> Planting:
    """The planted file's bytes and every value planted, with where and how it was encoded."""
    ds = pydicom.dcmread(io.BytesIO(source)) if isinstance(source, bytes) else source
    values = {**identity.values, **extra_values(identity)}
    # Existing occurrences at any depth too (private sequences hold copies of standard attributes).
    for element in ds.iterall():
        if element.keyword in values:
            element.value = values[element.keyword]
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    planted = [PlantedValue(keyword, value) for keyword, value in values.items() if len(value) >= 8]

    patient = f"{values['PatientName']} {values['PatientID']}"
    investigators = f"Investigators^{values['ReferringPhysicianName']}"
    ds.StudyDescription = patient
    ds.PerformedProcedureStepDescription = investigators
    ds.ImageComments = f"scanned at {values['StationName']}"
    planted += [
        PlantedValue("StudyDescription", patient),
        PlantedValue("PerformedProcedureStepDescription", investigators),
    ]
    planted += _plant_csa(ds, values["PatientID"], values["StationName"])
    planted += _plant_philips(ds, values["PatientName"])
    planted += _plant_history(ds, values["PatientID"])

    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return Planting(buffer.getvalue(), tuple(planted))


def plant(source: Dataset | bytes, identity: Identity) -> bytes:
    """The file with identifying values planted (see planting() for which, where and how encoded)."""
    return planting(source, identity).data


def found_in(data: bytes, text: str) -> list[str]:
    """The encodings in which `text` occurs in `data`: a leak scan's answer for one value."""
    return [encoding for encoding in SEARCH_ENCODINGS if text.encode(encoding) in data]


@dataclass(frozen=True)
class PlantedSession:
    vendor_files: tuple[str, ...]
    dicoms: tuple[Path, ...]
    planted: tuple[PlantedValue, ...]  # of all its files, each value once


# Subjects by vendor, so one subject's sessions share an identity as real repeat visits do.
_SUBJECT_OF_VENDOR = {"siemens": "VENDOR_0001", "philips": "VENDOR_0002", "ge": "VENDOR_0003", "toshiba": "VENDOR_0004"}


def build_vendor_tree(root: Path | str) -> dict[str, PlantedSession]:
    """Write root/<SUBJECT>/imaging/<SUBJECT>_<SES>/<name>.dcm, a session per vendor file or series; by session."""
    root = Path(root)
    session_of_group: dict[str, str] = {}
    sessions: dict[str, PlantedSession] = {}
    for name, vendor_file in VENDOR_FILES.items():
        subject = _SUBJECT_OF_VENDOR[name.split("_", 1)[0]]
        group = vendor_file.session or name
        if group not in session_of_group:
            taken = sum(s.startswith(f"{subject}_") for s in session_of_group.values())
            session_of_group[group] = f"{subject}_{taken + 1:02d}"
        session = session_of_group[group]
        planted = planting(vendor_file.load(), identity_for(subject))
        path = root / subject / "imaging" / session / f"{name}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(planted.data)
        before = sessions.get(session, PlantedSession((), (), ()))
        values = before.planted + tuple(v for v in planted.values if v not in before.planted)
        sessions[session] = PlantedSession((*before.vendor_files, name), (*before.dicoms, path), values)
    return sessions
