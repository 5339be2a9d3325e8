"""read_instance on real, damaged and non-DICOM files: each is read, or refused with the right exception.

NotDicom: skipped. BadDicom: fails the session. DicomDir: dropped. Never another exception type, and never a
value from the file in a reason.
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
import random
import re
import struct
import tarfile
import traceback
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import pydicom
import pytest
from pydicom.data import data_manager, get_testdata_file, get_testdata_files
from pydicom.dataelem import RawDataElement
from pydicom.misc import is_dicom
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicom_deid.dicomfile import BadDicom, DicomDir, NotDicom, read_instance
from helpers import pipe

REFUSALS = (NotDicom, BadDicom, DicomDir)


def packaged(name: str) -> Path:
    return Path(get_testdata_file(name))


def noise(size: int) -> bytes:
    return random.Random(size).randbytes(size)  # the same bytes on every run


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def pixel_data_offset(data: bytes) -> int:
    """Where the (7FE0,0010) element starts, in either byte order; these files have no other such bytes."""
    offset = max(data.rfind(b"\xe0\x7f\x10\x00"), data.rfind(b"\x7f\xe0\x00\x10"))
    assert offset > 0
    return offset


# --- readable files -------------------------------------------------------------------------------------------


def test_valid_file_reads_with_its_pixel_data() -> None:
    source = packaged("MR_small.dcm")

    ds = read_instance(source, "anat/IM1.dcm")

    expected = pydicom.dcmread(source)
    assert ds.SOPInstanceUID == expected.SOPInstanceUID
    assert ds.PixelData == expected.PixelData
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("rtstruct.dcm", ImplicitVRLittleEndian),
        ("OT-PAL-8-face.dcm", ImplicitVRLittleEndian),  # full of retired group lengths (gggg,0000)
        ("ExplVR_LitEndNoMeta.dcm", ExplicitVRLittleEndian),
        ("ExplVR_BigEndNoMeta.dcm", ExplicitVRBigEndian),
    ],
)
def test_dataset_without_preamble_or_file_meta_gets_meta_and_can_be_saved(
    tmp_path: Path, name: str, syntax: str
) -> None:
    source = packaged(name)
    assert source.read_bytes()[128:132] != b"DICM"
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(source)  # only a forced read takes it: this exercises read_instance's fallback

    ds = read_instance(source, name)

    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    saved = tmp_path / name
    ds.save_as(saved, enforce_file_format=True)
    read_back = pydicom.dcmread(saved)  # no force: a standard file now
    assert read_back.file_meta.TransferSyntaxUID == syntax
    original = pydicom.dcmread(source, force=True)
    for tag in [tag for tag in original.keys() if tag.element == 0]:  # noqa: SIM118 - a Dataset yields elements
        del original[tag]  # pydicom does not write the retired group lengths
    assert read_back == original
    assert read_instance(saved, name).SOPInstanceUID == ds.SOPInstanceUID


@pytest.mark.parametrize(("implicit", "syntax"), [(True, ImplicitVRLittleEndian), (False, ExplicitVRLittleEndian)])
def test_file_meta_matches_how_a_bare_dataset_was_written(tmp_path: Path, implicit: bool, syntax: str) -> None:
    source = pydicom.dcmread(packaged("MR_small.dcm"))
    bare = pydicom.dcmread(packaged("MR_small.dcm"))
    del bare.file_meta
    bare.preamble = None
    buffer = io.BytesIO()
    bare.save_as(buffer, implicit_vr=implicit, little_endian=True)
    path = write(tmp_path / "IM1.dcm", buffer.getvalue())

    ds = read_instance(path, "IM1.dcm")

    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.PixelData == source.PixelData
    assert ds.PatientName == source.PatientName


@pytest.mark.parametrize(("implicit", "syntax"), [(True, ImplicitVRLittleEndian), (False, ExplicitVRLittleEndian)])
def test_file_meta_without_transfer_syntax_gets_the_one_it_was_read_with(
    tmp_path: Path, implicit: bool, syntax: str
) -> None:
    # Like pydicom's meta_missing_tsyntax.dcm: a DICM header, but pydicom has to guess the encoding.
    source = pydicom.dcmread(packaged("MR_small.dcm"))
    ds = pydicom.dcmread(packaged("MR_small.dcm"))
    del ds.file_meta.TransferSyntaxUID
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=implicit, little_endian=True)
    path = write(tmp_path / "IM1.dcm", buffer.getvalue())

    read = read_instance(path, "IM1.dcm")

    assert read.file_meta.TransferSyntaxUID == syntax
    assert read.PixelData == source.PixelData
    read.save_as(tmp_path / "saved.dcm", enforce_file_format=True)
    assert pydicom.dcmread(tmp_path / "saved.dcm").file_meta.TransferSyntaxUID == syntax


# --- truncated and damaged DICOM ------------------------------------------------------------------------------


def test_mr_small_without_its_last_1000_bytes_is_bad(tmp_path: Path) -> None:
    data = packaged("MR_small.dcm").read_bytes()
    path = write(tmp_path / "IM1.dcm", data[:-1000])

    with pytest.raises(BadDicom, match=r"^anat/IM1\.dcm: .*truncated"):
        read_instance(path, "anat/IM1.dcm")


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",  # native, explicit VR little endian
        "MR_small_bigendian.dcm",  # native, big endian
        "MR_small_implicit.dcm",  # native, implicit VR
        "JPEG2000.dcm",  # encapsulated JPEG 2000
        "MR_small_jp2klossless.dcm",  # encapsulated JPEG 2000 lossless
        "SC_rgb_jpeg_dcmtk.dcm",  # encapsulated JPEG baseline
        "JPEG-lossy.dcm",  # encapsulated JPEG extended
    ],
)
def test_file_cut_anywhere_in_its_pixel_data_is_bad(tmp_path: Path, name: str) -> None:
    # For an encapsulated file pydicom warns and keeps no element at all; for a native one it keeps a short
    # value without a word; cut just before the element, Rows and Columns remain without pixel data.
    # (The last 4 bytes of an encapsulated file are its delimiter's zero length: a cut there loses nothing.)
    data = packaged(name).read_bytes()
    start = pixel_data_offset(data)
    cuts = {
        start,
        start + 2,
        start + 4,
        start + 8,
        start + 12,
        start + 16,
        start + 20,
        (start + len(data)) // 2,
        len(data) - 1000,
        len(data) - 9,
        len(data) - 5,
    }
    for cut in sorted(c for c in cuts if start <= c < len(data)):
        path = write(tmp_path / f"cut{cut}.dcm", data[:cut])
        with pytest.raises(BadDicom, match=rf"^{name}: "):
            read_instance(path, name)


def test_encapsulated_fragment_longer_than_the_pixel_data_is_bad(tmp_path: Path) -> None:
    # The delimiter is found, so the file reads, but the first fragment claims more bytes than there are.
    ds = pydicom.dcmread(packaged("SC_rgb_jpeg_dcmtk.dcm"))
    data = bytearray(ds.PixelData)
    offset_table = 8 + struct.unpack_from("<L", data, 4)[0]
    fragment = struct.unpack_from("<L", data, offset_table + 4)[0]
    struct.pack_into("<L", data, offset_table + 4, fragment + 1000)
    ds.PixelData = bytes(data)
    path = tmp_path / "IM1.dcm"
    ds.save_as(path)
    assert len(pydicom.dcmread(path).PixelData) == len(data)  # pydicom itself reads it without complaint

    with pytest.raises(BadDicom, match=r"^IM1\.dcm: encapsulated pixel data"):
        read_instance(path, "IM1.dcm")


def test_image_attributes_without_pixel_data_are_bad(tmp_path: Path) -> None:
    ds = pydicom.dcmread(packaged("MR_small.dcm"))
    del ds.PixelData
    path = tmp_path / "IM1.dcm"
    ds.save_as(path)

    with pytest.raises(BadDicom, match=r"^IM1\.dcm: image attributes .* no pixel data"):
        read_instance(path, "IM1.dcm")


def test_dicm_magic_followed_by_garbage_is_bad_whatever_its_name(tmp_path: Path) -> None:
    data = bytes(128) + b"DICM" + noise(3000)
    for name in ("IM1.dcm", "IM0001"):  # the magic alone says it is meant to be DICOM
        with pytest.raises(BadDicom, match=rf"^{name}: "):
            read_instance(write(tmp_path / name, data), name)


@pytest.mark.parametrize("name", ["x.dcm", "X.DCM", "scan.ima", "empty.dcm"])
def test_non_dicom_bytes_with_a_dicom_suffix_are_bad(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, b"" if name.startswith("empty") else noise(5000))

    with pytest.raises(BadDicom, match=rf"^{name}: "):
        read_instance(path, name)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("notes.txt", noise(5000)),
        ("notes.txt", b"Scan notes\nPatient was asked to hold still.\n" * 20),
        ("README", b"Exported by the scanner console.\n" * 20),
        ("empty", b""),
        ("scan.nii.gz", noise(300)),
    ],
)
def test_non_dicom_file_without_a_dicom_suffix_is_not_dicom(tmp_path: Path, name: str, data: bytes) -> None:
    path = write(tmp_path / name, data)

    with pytest.raises(NotDicom, match=rf"^{name}: not DICOM"):
        read_instance(path, name)


def test_no_meta_dcm_is_not_accepted_and_its_suffix_decides_bad_or_skipped(tmp_path: Path) -> None:
    # pydicom's no_meta.dcm parses to one unknown element: not a plausible dataset.
    data = packaged("no_meta.dcm").read_bytes()

    with pytest.raises(BadDicom, match=r"^no_meta\.dcm: "):
        read_instance(write(tmp_path / "no_meta.dcm", data), "no_meta.dcm")
    with pytest.raises(NotDicom):
        read_instance(write(tmp_path / "no_meta", data), "no_meta")


@pytest.mark.parametrize("name", ["DICOMDIR", "index.dcm", "dicomdir"])
def test_dicomdir_is_dropped(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, Path(get_testdata_file("DICOMDIR")).read_bytes())

    with pytest.raises(DicomDir, match=rf"^{name}: DICOMDIR dropped"):
        read_instance(path, name)


def apple_double() -> bytes:
    """A `._` file as macOS writes it beside a file copied to FAT, exFAT or SMB, and into a Finder zip's __MACOSX/:
    magic, version 2, "Mac OS X" filler, then two entries, Finder info and an empty resource fork, in 4096 bytes."""
    header = struct.pack(">4sI16sH", b"\x00\x05\x16\x07", 0x00020000, b"Mac OS X".ljust(16), 2)
    entries = struct.pack(">6I", 9, 0x32, 0xEB0, 2, 0xEE2, 0x11E)  # (id, offset, length): Finder info, resource fork
    finder_info = b"ATTR".rjust(0x26, b"\0").ljust(0xEB0, b"\0")  # where macOS keeps the extended attributes
    resource_fork = b"\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x1e"
    resource_fork += b"This resource fork intentionally left blank   "
    data = header + entries + finder_info + resource_fork.ljust(0x11E, b"\0")
    assert len(data) == 4096
    return data


@pytest.mark.parametrize("name", ["._IM1.dcm", "__MACOSX/series1/._IM1.dcm", "._IM0001", "._IM1.DCM"])
def test_macos_metadata_files_are_not_dicom(tmp_path: Path, name: str) -> None:
    # Finder zips and copies from a Mac leave them beside the images; named .dcm, they failed the whole session.
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, apple_double())

    with pytest.raises(NotDicom, match=rf"^{re.escape(name)}: macOS metadata \(AppleDouble\), not an image$"):
        read_instance(path, name)


def test_dicom_whose_preamble_begins_like_apple_double_still_reads(tmp_path: Path) -> None:
    # The preamble is free for any use; only a file that is not DICOM is told apart by those bytes.
    data = packaged("MR_small.dcm").read_bytes()
    path = write(tmp_path / "IM1.dcm", apple_double()[:26] + data[26:])

    assert read_instance(path, "IM1.dcm").SOPInstanceUID == pydicom.dcmread(packaged("MR_small.dcm")).SOPInstanceUID


# --- reasons never carry values from the file ----------------------------------------------------------------

PLANTED = "ZEBRAFISH^QUOKKA"


def _planted_variants(tmp_path: Path) -> dict[str, Path]:
    ds = pydicom.dcmread(packaged("MR_small.dcm"))
    ds.PatientName = PLANTED
    ds.PatientID = PLANTED
    buffer = io.BytesIO()
    ds.save_as(buffer)
    data = buffer.getvalue()
    name_at = data.find(PLANTED.encode())

    # An invalid IS, which pydicom quotes in a warning when it parses it. pydicom will not write one, so a
    # valid placeholder of the same length is replaced in the bytes.
    placeholder = "1234567890123456"
    assert len(placeholder) == len(PLANTED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # longer than IS allows; written all the same
        ds.NumberOfFrames = placeholder
        invalid = io.BytesIO()
        ds.save_as(invalid)
    invalid_bytes = invalid.getvalue().replace(placeholder.encode(), PLANTED.encode())

    return {
        "pixels_cut.dcm": write(tmp_path / "pixels_cut.dcm", data[:-1000]),
        "name_cut.dcm": write(tmp_path / "name_cut.dcm", data[: name_at + 8]),
        "garbage.dcm": write(tmp_path / "garbage.dcm", bytes(128) + b"DICM" + noise(500) + data[name_at - 300 :]),
        "bare_garbage.dcm": write(tmp_path / "bare_garbage.dcm", noise(64) + data[name_at - 300 :]),
        "invalid_frames.dcm": write(tmp_path / "invalid_frames.dcm", invalid_bytes),
        "notes.txt": write(tmp_path / "notes.txt", noise(64) + data[name_at - 300 :]),
    }


def test_reasons_never_contain_a_value_from_the_file(tmp_path: Path) -> None:
    variants = _planted_variants(tmp_path)
    fragment = PLANTED[:8]  # all a file cut inside the name holds of it
    assert all(fragment.encode() in path.read_bytes() for path in variants.values())

    for name, path in variants.items():
        with warnings.catch_warnings(record=True) as leaked:
            warnings.simplefilter("always")
            with pytest.raises(REFUSALS) as caught:
                read_instance(path, name)
        text = "".join(traceback.format_exception(caught.value))  # what logging.exception would write
        assert fragment not in text, name
        assert not [str(w.message) for w in leaked if fragment in str(w.message)], name


# --- all of pydicom's test files -----------------------------------------------------------------------------

# Deliberately broken files among pydicom's and pydicom-data's test files.
KNOWN_BAD = {
    "MR_truncated.dcm",  # pixel data cut short
    "rtplan_truncated.dcm",  # ends inside a data element
    "emri_small_jpeg_2k_lossless_too_short.dcm",  # ends inside the encapsulated pixel data
    "badVR.dcm",  # NumberOfFrames "1A": the pixel data length cannot be checked
    "no_meta.dcm",  # one unknown element, no header
    "zipMR.gz",  # MR_small gzipped: images the workflow would leave out unnoticed if it skipped them
    # Fragments of one to three elements, with neither a SOPInstanceUID nor pixel data: what a file cut between
    # two elements early on leaves.
    "UN_sequence.dcm",
    "empty_charset_LEI.dcm",
    "no_meta_group_length.dcm",
    "priv_SQ.dcm",
}


def _packaged_test_files(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    # Offline: without this pydicom tries to download the files pydicom-data lacks (15 s of timeouts here).
    monkeypatch.setattr(data_manager, "online_test_file_dummy_paths", dict)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = get_testdata_files("**/*")
    return sorted({Path(p) for p in found if Path(p).is_file()})


def test_every_packaged_test_file_is_read_or_refused_as_expected(monkeypatch: pytest.MonkeyPatch) -> None:
    files = _packaged_test_files(monkeypatch)
    assert len(files) > 200  # pydicom's files and pydicom-data's

    outcome: dict[Path, str] = {}
    for path in files:
        try:
            read_instance(path, path.name)
            outcome[path] = "read"
        except REFUSALS as error:
            outcome[path] = type(error).__name__
        except Exception as error:  # noqa: BLE001 - the point: no other exception may escape
            outcome[path] = f"unexpected {type(error).__name__}"

    counts = Counter(outcome.values())
    print(f"\npackaged test files: {dict(counts)}")
    assert not [p.name for p, o in outcome.items() if o.startswith("unexpected")]
    assert {p.name for p, o in outcome.items() if o == "BadDicom"} == KNOWN_BAD
    assert {p.name for p, o in outcome.items() if o == "DicomDir"} == {
        p.name for p in files if p.name.upper().startswith("DICOMDIR")
    }
    # Skipped exactly the files that are neither named nor marked (DICM) as DICOM, nor packed DICOM: texts,
    # JSON, ICC profiles.
    assert {p for p, o in outcome.items() if o == "NotDicom"} == {
        p
        for p in files
        if p.suffix.lower() != ".dcm"
        and not is_dicom(p)
        and not p.name.startswith("DICOMDIR")
        and p.name not in KNOWN_BAD
    }


@pytest.mark.parametrize("name", ["MR_small.dcm", "CT_small.dcm", "SC_rgb_jpeg_dcmtk.dcm", "rtstruct.dcm"])
def test_damaged_bytes_never_raise_another_exception_type(tmp_path: Path, name: str) -> None:
    # Damage mostly in the header, where pydicom parses: a damaged TransferSyntaxUID or VR once escaped
    # as ValueError or NotImplementedError and would have stopped the whole session job.
    rng = random.Random(name)
    data = packaged(name).read_bytes()
    outcomes = Counter()
    for i in range(150):
        damaged = bytearray(data)
        for _ in range(rng.choice([1, 3, 8])):
            damaged[rng.randrange(min(len(damaged), 2000))] = rng.randrange(256)
        if i % 3 == 0:
            damaged = damaged[: rng.randrange(len(damaged))]
        path = write(tmp_path / ("IM.dcm" if i % 2 else "IM"), bytes(damaged))
        try:
            read_instance(path, "IM")
            outcomes["read"] += 1
        except REFUSALS as error:
            outcomes[type(error).__name__] += 1
    assert outcomes["BadDicom"] > 0  # the damage was real enough to be caught


@pytest.mark.parametrize("name", ["IM_0001.dcm", "IM_0001"])
def test_a_link_whose_target_is_gone_is_a_bad_file(tmp_path, name):
    # A file of the session is missing: whatever its name, the session must not publish without it.
    (tmp_path / name).symlink_to(tmp_path / "gone" / name)
    with pytest.raises(BadDicom, match=rf"^{name}: broken symbolic link"):
        read_instance(tmp_path / name, name)
    with pytest.raises(BadDicom, match=r"^gone.dcm: file removed while the session was read"):
        read_instance(tmp_path / "gone.dcm", "gone.dcm")


def test_a_pipe_is_skipped_without_being_opened(tmp_path):
    with pipe(tmp_path / "pipe") as path, pytest.raises(NotDicom, match=r"^pipe: not a regular file"):
        read_instance(path, "pipe")


# --- archives and compressed files under names the unpack stage does not know --------------------------------


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("IM0001.dcm", data)
    return buffer.getvalue()


def _tar(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("IM0001.dcm")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


MR_BYTES = packaged("MR_small.dcm").read_bytes()


@pytest.mark.parametrize(
    ("name", "data", "kind", "advice"),
    [
        ("download", _zip(MR_BYTES), "a zip archive", "or name it .zip"),  # a browser's save without the suffix
        ("export", _tar(MR_BYTES), "a tar archive", "or name it .zip"),
        ("IM0001.gz", gzip.compress(MR_BYTES), "a gzip-compressed DICOM file", "decompress it in place"),
        ("IM0001.dcm.bz2", bz2.compress(MR_BYTES), "a bzip2-compressed DICOM file", "decompress it in place"),
        ("series.xz", lzma.compress(_tar(MR_BYTES)), "a xz-compressed tar archive", "or name it .zip"),
        ("series.GZ", gzip.compress(_tar(MR_BYTES)), "a gzip-compressed tar archive", "or name it .zip"),
    ],
)
def test_packed_images_under_a_name_the_workflow_does_not_unpack_are_bad(tmp_path, name, data, kind, advice):
    # Skipped as "not DICOM", the images inside would be missing from a published session.
    path = write(tmp_path / name, data)
    with pytest.raises(BadDicom, match=rf"^{re.escape(name)}: {kind} under a name .*{advice}"):
        read_instance(path, name)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("scan.nii.gz", gzip.compress(b"\x5c\x01\x00\x00" + noise(400))),  # a NIfTI beside the DICOMs
        ("notes.txt.gz", gzip.compress(b"Patient moved during the second run.\n" * 20)),
        ("viewer.jar", _zip(MR_BYTES)),  # a patient CD's viewer: a zip, named as what it is
        ("broken.gz", b"\x1f\x8b" + noise(300)),
    ],
)
def test_other_compressed_files_are_still_skipped_as_not_dicom(tmp_path, name, data):
    path = write(tmp_path / name, data)
    with pytest.raises(NotDicom, match=rf"^{re.escape(name)}: not DICOM"):
        read_instance(path, name)


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "CT_small.dcm"])
def test_file_cut_inside_the_header_of_any_element_is_bad(tmp_path: Path, name: str) -> None:
    # pydicom stops without a word when the file ends inside an element's tag and length, and keeps what it read
    # before: cut there, a file would be published as a few header elements without UIDs or pixel data.
    data = packaged(name).read_bytes()
    elements = list(pydicom.dcmread(packaged(name)).items())
    cuts = []
    for (_, before), (_, element) in itertools.pairwise(elements):
        if isinstance(before, RawDataElement) and isinstance(element, RawDataElement):
            end = before.value_tell + before.length
            # Zero bytes alone after an element read as padding: a big-endian group 0008 cut after its first byte.
            cuts += [cut for cut in range(end + 1, element.value_tell) if data[end:cut].strip(b"\0")]
    assert len(cuts) > 6 * (len(elements) - 3)  # every header but those after SpecificCharacterSet, parsed early
    # Cut exactly between two elements before the SOP Instance UID: a few header elements, no UIDs, no pixels.
    before_uid = [
        element.value_tell - 8
        for tag, element in elements
        if 0x00080005 < tag <= 0x00080018 and isinstance(element, RawDataElement)
    ]
    cuts += before_uid
    for cut in cuts:
        path = write(tmp_path / "IM1.dcm", data[:cut])
        with pytest.raises(
            BadDicom, match=rf"^{name}: (file is truncated|unreadable DICOM|neither a SOPInstanceUID|no data elements)"
        ):
            read_instance(path, name)


def test_zero_bytes_after_the_last_element_are_padding_not_a_cut(tmp_path: Path) -> None:
    data = packaged("CT_small.dcm").read_bytes()
    for padding in (1, 4, 11, 12, 16):
        read_instance(write(tmp_path / f"pad{padding}.dcm", data + bytes(padding)), "IM1.dcm")
    with pytest.raises(BadDicom, match="ends inside the header of a data element"):
        read_instance(write(tmp_path / "cut.dcm", data + b"\x08\x00\x20"), "IM1.dcm")  # a next header, cut
