"""Build a small, byte-reproducible data2bids imaging tree from real packaged DICOMs.

The tree is the demo input and the test oracle: every file is a real pydicom test file (several transfer
syntaxes, a multi-frame, a series) into which known identifying values are planted, at the top level and
inside sequences, so that a de-identified output can be checked for every one of them.

Layout: ``<root>/<SUBJECT>/imaging/<SUBJECT>_<SES>/...`` with nested folders, oddly named files, archives of
every supported kind (.tar, .tgz, .tar.gz, .tar.bz2, .zip, .ZIP) and non-DICOM files.
"""

from __future__ import annotations

import bz2
import datetime
import gzip
import io
import re
import tarfile
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dicom_deid import tags
from dicom_deid.archives import archive_destination
from dicom_deid.paths import session_input_dir

# Fixed archive timestamps: tar/zip/gzip otherwise record the build time and the tree would differ per build.
_TAR_MTIME = 1_262_304_000  # 2010-01-01T00:00:00Z
_ZIP_DATE_TIME = (2010, 1, 1, 0, 0, 0)

# Packaged source files (pydicom test files; emri_small.dcm comes from pydicom-data).
MR = "MR_small.dcm"  # explicit VR little endian
MR_BIG = "MR_small_bigendian.dcm"  # explicit VR big endian
MR_IMPLICIT = "MR_small_implicit.dcm"  # implicit VR little endian
MR_J2K = "MR_small_jp2klossless.dcm"  # JPEG 2000 lossless
CT = "CT_small.dcm"  # has an OtherPatientIDsSequence of its own
NM_J2K = "JPEG2000.dcm"  # JPEG 2000 (lossy)
SC_JPEG = "SC_rgb_jpeg_dcmtk.dcm"  # JPEG baseline, RGB
MULTIFRAME = "emri_small.dcm"  # 10-frame MR


@dataclass(frozen=True)
class Identity:
    """Identifying values planted into every DICOM of one subject.

    ``values`` maps a DICOM keyword to its planted value and covers tags.REPLACED, tags.REMOVED, PatientName,
    PatientBirthDate and PatientSex. Wherever one of these keywords occurs in a planted file, at any depth,
    it holds exactly this value.
    """

    subject: str
    values: dict[str, str] = field(hash=False)


def identity_for(subject: str) -> Identity:
    """Return distinctive, VR-valid identifying values for ``subject`` (whose name must end in digits).

    Values embed the subject number so they differ per subject and are long and odd enough not to occur by
    chance in pixel data; byte scans of the output rely on that.
    """
    match = re.search(r"(\d+)$", subject)
    if match is None:
        raise ValueError(f"subject {subject!r} must end in digits, e.g. EPL31_LHS_0001")
    n = int(match.group(1))
    t = f"{n % 10000:04d}"
    values = {
        # tags.REPLACED
        "AccessionNumber": f"EPL31ACC{t}",
        "FillerOrderNumberImagingServiceRequest": f"EPL31FILLER{t}",
        "InstitutionName": f"SAINT EXAMPLE HOSPITAL {t}",
        "InstitutionAddress": f"{n} Infirmary Road, Exampleton EX{t}",
        "InstitutionalDepartmentName": f"EXAMPLE NEURORADIOLOGY {t}",
        "OtherPatientNames": f"QUIMBYMAIDEN{t}^ROSALIND",
        "PatientID": f"EPL31MRN{t}",
        "PerformedProcedureStepID": f"EPL31PPS{t}",
        "PlacerOrderNumberImagingServiceRequest": f"EPL31PLACER{t}",
        "RequestedProcedureID": f"EPL31RQP{t}",
        "ScheduledProcedureStepID": f"EPL31SPS{t}",
        "StationName": f"EPL31STN{t}",
        "StudyID": f"EPL31STUDY{t}",
        # tags.REMOVED
        "CountryOfResidence": f"REPUBLIC OF PLANTEDIA {t}",
        "Occupation": f"LIGHTKEEPER{t}",
        "PatientAddress": f"{t} Lantern Lane, Exampleton",
        "RegionOfResidence": f"PLANTED COUNTY {t}",
        # further identifying values (dicognito replaces them)
        "PatientName": f"QUIMBY{t}^ROSALIND^EXAMPLE",
        "PatientBirthDate": f"{1940 + n % 50}{n % 12 + 1:02d}{n % 28 + 1:02d}",
        "PatientSex": "F" if n % 2 else "M",
    }
    missing = set(tags.REPLACED + tags.REMOVED) - set(values)
    assert not missing, f"tags.py lists keywords with no planted value: {sorted(missing)}"
    return Identity(subject=subject, values=values)


def study_uid(subject: str, session: str) -> str:
    """Deterministic StudyInstanceUID of one session (same on every build)."""
    return generate_uid(entropy_srcs=[subject, session])


def study_date(session: str) -> str:
    """The StudyDate of one session: a session is one visit, on its own day (visit n: 91 days after visit n-1)."""
    match = re.search(r"(\d+)$", session)
    visit = int(match.group(1)) if match else 1
    return (datetime.date(2024, 1, 15) + datetime.timedelta(days=91 * (visit - 1))).strftime("%Y%m%d")


def plant_identity(ds: Dataset, identity: Identity, *, session: str, series: str, instance: int) -> None:
    """Write ``identity``'s values and deterministic UIDs into ``ds``, at the top level and nested.

    ``session`` (session folder name) keys the StudyInstanceUID and the StudyDate (the packaged files were
    made on many days), ``series`` the SeriesInstanceUID and ``instance`` (unique within the series) the
    SOPInstanceUID and InstanceNumber.
    Nesting: RequestAttributesSequence (depth 1) holds the order/procedure numbers; ReferencedPatientSequence
    (depth 1) holds patient and institution values plus an OtherPatientIDsSequence (depth 2) holding PatientID
    and PatientAddress again, so removal and replacement must work at every depth.
    """
    values = identity.values
    # Source files carry identifiers of their own, also inside sequences (CT_small's OtherPatientIDsSequence);
    # overwrite them so every occurrence of a keyword holds the one known value.
    for elem in ds.iterall():
        if elem.keyword in values:
            elem.value = values[elem.keyword]
    for keyword, value in values.items():
        setattr(ds, keyword, value)

    subject = identity.subject
    ds.StudyInstanceUID = study_uid(subject, session)
    ds.StudyDate = study_date(session)
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[subject, session, series])
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[subject, session, series, str(instance)])
    ds.InstanceNumber = instance
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID

    request = Dataset()
    for keyword in (
        "RequestedProcedureID",
        "ScheduledProcedureStepID",
        "AccessionNumber",
        "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
    ):
        setattr(request, keyword, values[keyword])
    ds.RequestAttributesSequence = Sequence([request])

    patient = Dataset()
    for keyword in (
        "PatientID",
        "PatientAddress",
        "CountryOfResidence",
        "RegionOfResidence",
        "Occupation",
        "InstitutionName",
        "InstitutionAddress",
    ):
        setattr(patient, keyword, values[keyword])
    depth2 = Dataset()
    depth2.PatientID = values["PatientID"]
    depth2.PatientAddress = values["PatientAddress"]
    patient.OtherPatientIDsSequence = Sequence([depth2])
    ds.ReferencedPatientSequence = Sequence([patient])


@dataclass(frozen=True)
class SessionLayout:
    """Inputs of one session folder; every path is relative to it (POSIX). A source names a packaged DICOM
    (or whatever the ``read`` function given to ``write_session`` accepts)."""

    files: list[tuple[str, str]]  # (path, source)
    archives: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # archive -> [(member, source)]
    other: dict[str, str] = field(default_factory=dict)  # non-DICOM path -> text content

    def instances(self) -> list[tuple[str, str]]:
        """(expected output path, source) of every DICOM instance: the files first, then archive members."""
        members = [
            (f"{archive_destination(archive)}/{member}", source)
            for archive, members in self.archives.items()
            for member, source in members
        ]
        return list(self.files) + members


def _series(pattern: str, source: str, count: int) -> list[tuple[str, str]]:
    return [(pattern.format(i), source) for i in range(1, count + 1)]


SUBJECTS = ("EPL31_LHS_0001", "EPL31_LHS_0002")
_NOTES = "Scan notes: subject tolerated the session well; no incidental findings to report.\n"
_SIDECAR = '{\n  "ProtocolName": "t1_mprage_sag",\n  "RepetitionTime": 2.3\n}\n'

# (subject, session folder) -> contents. Together every archive suffix appears, upper-case .ZIP included.
_LAYOUT: dict[tuple[str, str], SessionLayout] = {
    ("EPL31_LHS_0001", "EPL31_LHS_0001_01"): SessionLayout(
        files=[
            *_series("anat/t1/IM_{:04d}.dcm", MR, 6),
            ("ct/CT_small.dcm", CT),
            # flat folder, names without extension, one series in three encodings
            ("raw/IM0001", MR_BIG),
            ("raw/IM0002", MR_IMPLICIT),
            ("raw/IM0003", MR_J2K),
        ],
        archives={
            "dwi_scan/dwi_scan.tar.gz": _series("series1/IM{}.dcm", MR, 3),
            "exports/scans.zip": [("DICOM/0001/IM1", SC_JPEG), ("DICOM/0002/IM1.dcm", CT)],
        },
        other={"notes.txt": _NOTES, "anat/t1/acquisition.json": _SIDECAR},
    ),
    ("EPL31_LHS_0001", "EPL31_LHS_0001_02"): SessionLayout(
        files=[("func/bold/emri_small.dcm", MULTIFRAME), *_series("anat/t2/IM_{:04d}.dcm", MR_IMPLICIT, 4)],
        archives={
            "fmap.tgz": _series("fmap/phase/IM{}.dcm", MR, 2),
            "localizer/localizer.tar": [("loc/IM1.dcm", MR_BIG), ("loc/IM2.dcm", MR)],
            "EXPORT.ZIP": [("PACS/ST0001/IM1", NM_J2K), ("PACS/ST0001/IM2", NM_J2K), ("PACS/ST0002/IM1", CT)],
        },
        other={"notes.txt": _NOTES},
    ),
    ("EPL31_LHS_0002", "EPL31_LHS_0002_01"): SessionLayout(
        files=[
            *_series("anat/t1/IM_{:04d}.dcm", MR, 6),
            ("nm/JPEG2000.dcm", NM_J2K),
            ("func/bold/emri_small.dcm", MULTIFRAME),
            ("raw/IM0001", MR_IMPLICIT),
            ("raw/IM0002", SC_JPEG),
        ],
        archives={
            "perf/perf.tar.bz2": _series("run1/IM{}.dcm", MR, 3),
            "dwi_scan/dwi_scan.tar.gz": _series("series1/IM{}.dcm", MR_BIG, 2),
            "other/scans.zip": [("DICOM/0001/IM1.dcm", MR_J2K), ("DICOM/0001/IM2.dcm", MR)],
        },
        other={"notes.txt": _NOTES, "dataset_description.json": '{\n  "Name": "EPL31 demo"\n}\n'},
    ),
}


@dataclass(frozen=True)
class ExampleTree:
    """What ``build_example_tree`` wrote; keys are (subject, session folder name), paths POSIX strings."""

    root: Path
    identities: dict[str, Identity]  # subject -> planted identity
    expected_dicoms: dict[tuple[str, str], list[str]]  # expected output path of every DICOM instance
    non_dicom: dict[tuple[str, str], list[str]]  # non-DICOM input files, relative to the session folder

    def session_dir(self, subject: str, session: str) -> Path:
        return session_input_dir(self.root, subject, session.removeprefix(f"{subject}_"))


def packaged_path(source: str) -> str:
    """The path of a DICOM file that pydicom or pydicom-data ships, by its file name."""
    path = get_testdata_file(source)
    if path is None:
        raise FileNotFoundError(f"packaged DICOM {source} not found (is pydicom-data installed?)")
    return path


def read_packaged(source: str) -> Dataset:
    return pydicom.dcmread(packaged_path(source))


def planted_bytes(ds: Dataset, identity: Identity, *, session: str, series: str, instance: int) -> bytes:
    """``ds`` with ``identity`` planted (see ``plant_identity``), encoded as a DICOM file."""
    plant_identity(ds, identity, session=session, series=series, instance=instance)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)  # keeps preamble, file meta and transfer syntax
    return buffer.getvalue()


def _parent_dirs(names: list[str]) -> list[str]:
    dirs = {str(parent) for name in names for parent in PurePosixPath(name).parents if str(parent) != "."}
    return sorted(dirs)


def _tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # Directory entries as `tar -c` writes them, so extractors meet them too.
        for name in _parent_dirs([m for m, _ in members]):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _TAR_MTIME
            tar.addfile(info)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, _TAR_MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in _parent_dirs([m for m, _ in members]):
            archive.writestr(zipfile.ZipInfo(name + "/", date_time=_ZIP_DATE_TIME), b"")
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def archive_bytes(archive: str, members: list[tuple[str, bytes]]) -> bytes:
    """The bytes of ``archive`` holding ``members``; its suffix (any case) decides the kind."""
    name = archive.lower()
    if name.endswith(".zip"):
        return _zip_bytes(members)
    data = _tar_bytes(members)
    if name.endswith((".tar.gz", ".tgz")):
        return gzip.compress(data, mtime=0)  # mtime=0: no build time in the gzip header
    if name.endswith(".tar.bz2"):
        return bz2.compress(data)
    return data


def build_example_tree(root: Path) -> ExampleTree:
    """Write the demo tree under ``root`` (absent or empty) and return what it holds.

    Byte-reproducible: two builds give identical files. Each output folder is one series; instances are
    numbered in layout order within it.
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; the tree must be built into a fresh folder")

    identities = {subject: identity_for(subject) for subject in SUBJECTS}
    expected: dict[tuple[str, str], list[str]] = {}
    non_dicom: dict[tuple[str, str], list[str]] = {}
    for (subject, session), layout in _LAYOUT.items():
        session_dir = session_input_dir(root, subject, session.removeprefix(f"{subject}_"))
        expected[(subject, session)] = write_session(session_dir, session, layout, identities[subject])
        non_dicom[(subject, session)] = list(layout.other)
    return ExampleTree(root=root, identities=identities, expected_dicoms=expected, non_dicom=non_dicom)


def write_session(
    session_dir: Path,
    session: str,
    layout: SessionLayout,
    identity: Identity,
    read: Callable[[str], Dataset] = read_packaged,
) -> list[str]:
    """Write one session folder: every source read with ``read``, ``identity`` planted, archives packed.

    Returns the expected output path of every instance (the oracle). Each output folder is one series;
    instances are numbered in layout order within it, so the same layout gives the same bytes.
    """
    instances = layout.instances()
    in_archive = {
        f"{archive_destination(archive)}/{member}": (archive, member)
        for archive, members in layout.archives.items()
        for member, _ in members
    }
    members: defaultdict[str, list[tuple[str, bytes]]] = defaultdict(list)
    count_in_series: defaultdict[str, int] = defaultdict(int)
    for output, source in instances:
        series = str(PurePosixPath(output).parent)
        count_in_series[series] += 1
        data = planted_bytes(read(source), identity, session=session, series=series, instance=count_in_series[series])
        if output in in_archive:
            archive, member = in_archive[output]
            members[archive].append((member, data))
        else:
            write_file(session_dir / output, data)
    for archive in layout.archives:
        write_file(session_dir / archive, archive_bytes(archive, members[archive]))
    for path, text in layout.other.items():
        write_file(session_dir / path, text.encode())
    return [output for output, _ in instances]


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
