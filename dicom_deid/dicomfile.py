"""Read one file and decide what it is: a DICOM instance, a DICOMDIR, a non-DICOM file, or a broken DICOM.

Reasons never quote a value from the file, so they are safe to write to reports.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import stat
import struct
import warnings
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

# A file with one of these endings must be DICOM: failing to read it is an error, not a skip.
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ".ima"}
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
PIXEL_TAGS = tuple(pydicom.datadict.tag_for_keyword(k) for k in PIXEL_KEYWORDS)
# Bytes: pixel values above this are written from the original's bytes and checked where they lie in the output,
# never copied (stages/anonymize.py, verify/files.py): a worker holds two copies of a big file, not three.
LARGE_VALUE = 1 << 20

# Archives and compressed files, told by their first bytes (offset, magic, what it is). Under a name the unpack
# stage does not know (a download saved without ".zip", a DICOM gzipped to "IM0001.gz") such a file would be
# skipped as "not DICOM", and the images inside left out unnoticed.
_ARCHIVE_MAGIC = (
    (0, b"PK\x03\x04", "zip archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z archive"),
    (0, b"Rar!\x1a\x07", "rar archive"),
    (0, b"\x28\xb5\x2f\xfd", "zstd-compressed file"),
    (257, b"ustar", "tar archive"),
)
_COMPRESSED_MAGIC = ((b"\x1f\x8b", "gzip", gzip.open), (b"BZh", "bzip2", bz2.open), (b"\xfd7zXZ\x00", "xz", lzma.open))
# Looked at only where the name says nothing (no suffix, as many exports name their DICOMs) or says "compressed":
# a viewer's .jar or a .docx on a patient CD is a zip too, and rightly skipped.
_PACKED_SUFFIXES = {"", ".gz", ".bz2", ".xz", ".zst", ".z", ".lz", ".lzma"}

# The first bytes of an AppleDouble file: the Finder info and resource fork macOS writes as `._<name>` beside a file
# copied to FAT, exFAT or SMB, and into __MACOSX/ in a Finder zip. `._IM1.dcm` ends in .dcm, yet holds no image.
_APPLE_DOUBLE_MAGIC = b"\x00\x05\x16\x07"

# pydicom's warning when a file ends inside a value of undefined length (an encapsulated PixelData or a
# sequence); it then keeps none of the elements read at that level, so the dataset looks short but valid.
_EOF_WARNING = "End of file reached before delimiter"


def stored_vr(element: pydicom.DataElement | RawDataElement) -> str | None:
    """An element's VR without decoding it: as the file gives it, else (implicit VR, UN) the dictionary's for a
    public tag. Decoding every element to learn its VR would make pydicom re-encode all of them on writing.

    Walks take the elements from `Dataset.items()`, which hands them over as stored (raw or decoded), without
    the per-element lookup of `get_item`: a walk visits every element of every file, several times."""
    vr = element.VR
    if vr in (None, "UN"):
        try:
            return dictionary_VR(element.tag)
        except KeyError:  # private, or unknown: only decoding tells
            return vr
    return vr


class NotDicom(Exception):
    """Not a DICOM file at all: skipped and reported."""


class BadDicom(Exception):
    """Meant to be DICOM but unreadable or incomplete: fails the session."""


class DicomDir(Exception):
    """A DICOMDIR indexes patient identifiers of the media it came from: dropped and reported."""


def _looks_like_dataset(ds: pydicom.Dataset) -> bool:
    """A file read with force=True is accepted only when it parses as a plausible dataset."""
    tags = [tag for tag in ds.keys() if not tag.is_private]  # noqa: SIM118 - iterating a Dataset parses values
    if len(tags) < 3:
        return False
    # Group lengths (gggg,0000) are retired and absent from the dictionary, yet old files are full of them.
    known = sum(1 for tag in tags if tag.element == 0 or pydicom.datadict.dictionary_has_tag(tag))
    return known / len(tags) >= 0.9 and "SOPInstanceUID" in ds


def _syntax_read_with(ds: pydicom.Dataset) -> UID:
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _add_file_meta(ds: pydicom.Dataset) -> None:
    """Give a dataset read without file meta the meta dicognito and a standard writer need."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = _syntax_read_with(ds)
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", UID("1.2.840.10008.5.1.4.1.1.7"))
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta


def _short_value(ds: pydicom.Dataset, path: Path, size: int, label: str) -> str | None:
    """The reason when the file (`size` bytes, as read) ends inside an element, else None.

    pydicom stops without a word when the file ends inside a value of defined length and keeps the short value.
    Only the element read last can be short; a nested one makes its enclosing sequence's value short. It stops
    as silently when the file ends inside an element's tag and length (8 or 12 bytes), and leaves those bytes
    unread: the element before them looks whole, and so would a file cut after its first few elements. Zero
    bytes there are padding, not a cut: no data element's tag begins with group 0000.
    """
    last = None
    for elements in (ds.file_meta, ds):
        for tag, raw in elements.items():  # iterating a Dataset parses values; items() does not
            if isinstance(raw, RawDataElement) and raw.length != 0xFFFFFFFF and raw.value is not None:
                if len(raw.value) < raw.length and tag == 0x7FE00010:
                    return f"{label}: pixel data is truncated ({len(raw.value)} of {raw.length} bytes)"
                if len(raw.value) < raw.length:
                    return f"{label}: file is truncated (it ends inside a data element)"
            last = raw
    # Positions count the file's bytes, except in a deflated dataset (the inflated stream's).
    deflated = ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    if isinstance(last, RawDataElement) and last.length != 0xFFFFFFFF and last.value_tell and not deflated:
        end = last.value_tell + last.length
        if 0 < size - end < 12:
            with open(path, "rb") as handle:
                handle.seek(end)
                if handle.read().strip(b"\0"):
                    return f"{label}: file is truncated (it ends inside the header of a data element)"
    return None


def _items_fit(data: bytes) -> bool:
    """True when encapsulated pixel data is a run of whole items: offset table, then at least one fragment.

    pydicom's own fragment reader returns a short last fragment instead of failing, so lengths are checked here.
    """
    offset = items = 0
    while offset < len(data):
        if offset + 8 > len(data):
            return False
        group, element, length = struct.unpack_from("<HHL", data, offset)
        if (group, element) != (0xFFFE, 0xE000) or offset + 8 + length > len(data):
            return False
        offset += 8 + length
        items += 1
    return items >= 2


def _check_pixel_data(ds: pydicom.Dataset, label: str) -> None:
    if not any(keyword in ds for keyword in PIXEL_KEYWORDS):
        # An image whose pixel data went missing: the file was cut between elements.
        if "Rows" in ds and "Columns" in ds:
            raise BadDicom(f"{label}: image attributes (Rows, Columns) but no pixel data; truncated?")
        if "SOPInstanceUID" not in ds:
            # Cut between two elements before its UIDs, what is left is a few header elements (ImageType, dates):
            # published, it would count as an instance and a series of its own.
            raise BadDicom(f"{label}: neither a SOPInstanceUID nor pixel data: a file cut short, or no instance")
        return
    if "PixelData" not in ds:
        return
    data = ds.PixelData
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None and UID(syntax).is_encapsulated:
        if not _items_fit(data):
            raise BadDicom(f"{label}: encapsulated pixel data is truncated or corrupt")
        return
    try:
        expected = get_expected_length(ds, unit="bytes")
    except Exception:  # noqa: BLE001 - missing Rows/Columns etc.: nothing to compare against; kept as it is
        return
    if not isinstance(expected, int):
        # An invalid value (e.g. NumberOfFrames "1A") makes pydicom compute a string, not a length.
        raise BadDicom(f"{label}: invalid image attributes, pixel data length cannot be checked")
    if len(data) < expected:
        raise BadDicom(f"{label}: pixel data is truncated ({len(data)} of {expected} bytes)")


def _check_dataset(ds: pydicom.Dataset, label: str, truncated: str | None, warned: list[str]) -> None:
    """Raise DicomDir or BadDicom for a dataset that pydicom read but that is no whole instance."""
    if ds.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage or "DirectoryRecordSequence" in ds:
        raise DicomDir(f"{label}: DICOMDIR dropped (it indexes patient identifiers; rebuild it from the output)")
    if truncated:
        raise BadDicom(truncated)
    if any(message.startswith(_EOF_WARNING) for message in warned):
        raise BadDicom(f"{label}: file is truncated (it ends inside pixel data or a sequence)")
    if len(ds) == 0:
        raise BadDicom(f"{label}: no data elements after the file header")
    _check_pixel_data(ds, label)


def _refuse_what_is_no_file(path: Path, label: str) -> int:
    """The size of a regular file; raise BadDicom for a link whose target is gone (a file of the session is
    missing) or a folder this account may not read, NotDicom for a folder link that loops, a pipe, a socket or a
    device: opening a pipe would wait for ever."""
    try:
        found = os.stat(path)
        mode = found.st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise BadDicom(f"{label}: broken symbolic link (the file it points to is missing)") from None
        raise BadDicom(f"{label}: file removed while the session was read") from None
    if stat.S_ISDIR(mode):
        try:
            os.scandir(path).close()
        except PermissionError:
            raise BadDicom(f"{label}: folder not readable (permission denied)") from None
        raise NotDicom(f"{label}: link to a folder it lies in, not followed")
    if not stat.S_ISREG(mode):
        raise NotDicom(f"{label}: not a regular file (a pipe, socket or device)")
    return found.st_size


def read_instance(path: Path, label: str) -> pydicom.Dataset:
    """Read a whole file as a DICOM instance, or raise NotDicom, DicomDir or BadDicom naming `label`."""
    size = _refuse_what_is_no_file(path, label)
    must_be_dicom = path.suffix.lower() in DICOM_SUFFIXES
    # Recorded, never shown: pydicom's warnings quote values from the file, and one of them means truncation.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                ds = pydicom.dcmread(path)
            except InvalidDicomError:
                ds = pydicom.dcmread(path, force=True)
                if not _looks_like_dataset(ds):
                    raise
                _add_file_meta(ds)
            if "TransferSyntaxUID" not in ds.file_meta:
                # A header without it (pydicom guessed the encoding); dicognito and every writer need it.
                ds.file_meta.TransferSyntaxUID = _syntax_read_with(ds)
            # Before any value is parsed: parsing drops the length read.
            truncated = _short_value(ds, path, size, label)
            ds.PixelData if "PixelData" in ds else None  # noqa: B018 - parse it now to catch truncation
        except PermissionError:
            raise BadDicom(f"{label}: not readable (permission denied)") from None
        except InvalidDicomError:
            head = _head(path)
            _refuse_mac_metadata(head, label)
            if must_be_dicom:
                raise BadDicom(f"{label}: not a readable DICOM file (no DICOM header or dataset)") from None
            _refuse_packed(path, head, label)
            raise NotDicom(f"{label}: not DICOM") from None
        except Exception as error:  # noqa: BLE001 - pydicom fails in many ways on damaged files
            head = _head(path)
            _refuse_mac_metadata(head, label)
            if not must_be_dicom and not _has_dicm_magic(head):
                _refuse_packed(path, head, label)
                raise NotDicom(f"{label}: not DICOM") from None
            raise BadDicom(f"{label}: unreadable DICOM ({type(error).__name__})") from None

        try:
            _check_dataset(ds, label, truncated, [str(warning.message) for warning in caught])
        except (BadDicom, DicomDir):
            raise
        except Exception as error:  # noqa: BLE001 - a damaged value met while checking, e.g. a bad TransferSyntaxUID
            raise BadDicom(f"{label}: unreadable DICOM ({type(error).__name__})") from None
    return ds


def _head(path: Path) -> bytes:
    """The first bytes of a file pydicom could not read: enough for every magic looked for, read in one open."""
    with open(path, "rb") as handle:
        return handle.read(262)


def _refuse_mac_metadata(head: bytes, label: str) -> None:
    """Raise NotDicom for an AppleDouble file, whatever its name; a damaged DICOM whose preamble happens to begin
    with those bytes has its DICM magic too, and stays bad."""
    if head.startswith(_APPLE_DOUBLE_MAGIC) and not _has_dicm_magic(head):
        raise NotDicom(f"{label}: macOS metadata (AppleDouble), not an image")


def _packed_kind(path: Path, head: bytes) -> str:
    """What an archive or a compressed file holding DICOM or tar is, from its bytes; "" for anything else.

    A gzip, bzip2 or xz file counts only when what it holds begins as DICOM or tar does: a NIfTI `.nii.gz`
    beside the DICOMs is rightly skipped."""
    if kind := next((kind for offset, magic, kind in _ARCHIVE_MAGIC if head[offset:].startswith(magic)), ""):
        return kind
    for magic, name, opener in _COMPRESSED_MAGIC:
        if head.startswith(magic):
            try:
                with opener(path, "rb") as stream:
                    inner = stream.read(262)
            except (OSError, EOFError, lzma.LZMAError):
                return ""  # damaged: nothing tells what it held
            if inner[128:132] == b"DICM":
                return f"{name}-compressed DICOM file"
            if inner[257:262] == b"ustar":
                return f"{name}-compressed tar archive"
    return ""


def _refuse_packed(path: Path, head: bytes, label: str) -> None:
    """Raise BadDicom for a file that is not DICOM but packs images under a name the unpack stage does not know."""
    if path.suffix.lower() not in _PACKED_SUFFIXES or not (kind := _packed_kind(path, head)):
        return
    if kind.endswith("DICOM file"):
        advice = "decompress it in place"
    else:
        advice = "unpack it in place, or name it .zip, .tar, .tar.gz, .tar.bz2 or .tar.xz"
    raise BadDicom(f"{label}: a {kind} under a name the workflow does not unpack, its images left out: {advice}")


def _has_dicm_magic(head: bytes) -> bool:
    return head[128:132] == b"DICM"


# Kinds of image that often carry text burned into the pixels (names, dates, IDs on the screen that was captured).
_CONVERSION_TYPES = {"WSD": "screen capture", "SD": "scanned document", "SI": "scanned image", "DF": "digitized film"}


def burned_in_text_risk(ds: pydicom.Dataset) -> str:
    """Why this instance may show identifying text in its pixels, or "" when nothing says so."""
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        return "BurnedInAnnotation YES"
    sop_class = UID(str(ds.get("SOPClassUID", "")))
    name = sop_class.name if sop_class.is_valid else ""
    modality = str(ds.get("Modality", "")).strip().upper()
    if modality in ("US", "IVUS") or "Ultrasound" in name:
        return "ultrasound"
    if "Secondary Capture" in name:
        return "secondary capture"
    if modality == "DOC" or name.startswith("Encapsulated"):
        return "encapsulated document"
    conversion = str(ds.get("ConversionType", "")).strip().upper()
    return _CONVERSION_TYPES.get(conversion, "")
