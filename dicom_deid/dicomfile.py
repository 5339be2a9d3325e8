"""Read one file and decide what it is: a DICOM instance, a DICOMDIR, a non-DICOM file, or a broken DICOM.

Reasons never quote a value from the file, so they are safe to write to reports.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

# A file with one of these endings must be DICOM: failing to read it is an error, not a skip.
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ".ima"}
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


class NotDicom(Exception):
    """Not a DICOM file at all: skipped and reported."""


class BadDicom(Exception):
    """Meant to be DICOM but unreadable or incomplete: fails the session."""


class DicomDir(Exception):
    """A DICOMDIR indexes patient identifiers of the media it came from: dropped and reported."""


def _looks_like_dataset(ds: pydicom.Dataset) -> bool:
    """A file read with force=True is accepted only when it parses as a plausible dataset."""
    tags = [tag for tag in ds.keys() if not tag.is_private]
    if len(tags) < 3:
        return False
    known = sum(1 for tag in tags if pydicom.datadict.dictionary_has_tag(tag))
    return known / len(tags) >= 0.9 and "SOPInstanceUID" in ds


def _add_file_meta(ds: pydicom.Dataset) -> None:
    """Give a dataset read without file meta the meta dicognito and a standard writer need."""
    implicit, little = ds.original_encoding
    if implicit:
        syntax = ImplicitVRLittleEndian
    else:
        syntax = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = syntax
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", UID("1.2.840.10008.5.1.4.1.1.7"))
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta


def _check_pixel_data(ds: pydicom.Dataset, label: str) -> None:
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if "PixelData" not in ds:
        return
    data = ds.PixelData
    if syntax is not None and UID(syntax).is_encapsulated:
        try:
            frames = list(pydicom.encaps.generate_fragments(data))
        except Exception as error:
            raise BadDicom(f"{label}: encapsulated pixel data is corrupt ({type(error).__name__})") from None
        if not frames or sum(len(f) for f in frames) + 8 * len(frames) > len(data) + 8:
            raise BadDicom(f"{label}: encapsulated pixel data is truncated")
        return
    try:
        expected = get_expected_length(ds, unit="bytes")
    except Exception:
        return  # missing Rows/Columns etc.: nothing to compare against; kept as it is
    if len(data) < expected:
        raise BadDicom(f"{label}: pixel data is truncated ({len(data)} of {expected} bytes)")


def read_instance(path: Path, label: str) -> pydicom.Dataset:
    """Read a whole file as a DICOM instance, or raise NotDicom, DicomDir or BadDicom naming `label`."""
    must_be_dicom = path.suffix.lower() in DICOM_SUFFIXES
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns with values from the file; keep them out of logs
            try:
                ds = pydicom.dcmread(path)
            except InvalidDicomError:
                ds = pydicom.dcmread(path, force=True)
                if not _looks_like_dataset(ds):
                    raise
                _add_file_meta(ds)
            ds.PixelData if "PixelData" in ds else None  # noqa: B018 - parse it now to catch truncation
    except InvalidDicomError:
        if must_be_dicom:
            raise BadDicom(f"{label}: not a readable DICOM file (no DICOM header or dataset)") from None
        raise NotDicom(f"{label}: not DICOM") from None
    except Exception as error:
        if not must_be_dicom and not _has_dicm_magic(path):
            raise NotDicom(f"{label}: not DICOM") from None
        raise BadDicom(f"{label}: unreadable DICOM ({type(error).__name__})") from None

    if ds.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage or "DirectoryRecordSequence" in ds:
        raise DicomDir(f"{label}: DICOMDIR dropped (it indexes patient identifiers; rebuild it from the output)")
    _check_pixel_data(ds, label)
    return ds


def _has_dicm_magic(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"
