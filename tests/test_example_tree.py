"""The demo tree is real, reproducible, and carries every planted identifying value where the oracle says."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom import config
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.misc import is_dicom
from pydicom.valuerep import validate_value

from dicom_deid import tags
from dicom_deid.archives import archive_destination
from dicom_deid.example_tree import (
    ExampleTree,
    build_example_tree,
    identity_for,
    plant_identity,
)

PLANTED = tags.REPLACED + tags.REMOVED


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> ExampleTree:
    return build_example_tree(tmp_path_factory.mktemp("tree"))


def _is_archive(name: str) -> bool:
    return name.lower().endswith((".tar", ".tgz", ".tar.gz", ".tar.bz2", ".zip"))


def _members(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield info.filename, archive.read(info)
    else:
        with tarfile.open(path) as archive:
            for info in archive.getmembers():
                if info.isfile():
                    yield info.name, archive.extractfile(info).read()


def _instances(tree: ExampleTree, subject: str, session: str) -> dict[str, bytes]:
    """Output path -> bytes of every file and archive member in one session folder, non-DICOMs excluded."""
    session_dir = tree.session_dir(subject, session)
    found: dict[str, bytes] = {}
    for path in sorted(p for p in session_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(session_dir).as_posix()
        if rel in tree.non_dicom[(subject, session)]:
            continue
        if _is_archive(path.name):
            for member, data in _members(path):
                found[f"{archive_destination(rel)}/{member}"] = data
        else:
            found[rel] = path.read_bytes()
    return found


def _all_values(ds: Dataset, depth: int = 0) -> Iterator[tuple[int, str, str]]:
    """(depth, keyword, value) of every element, descending into sequences."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _all_values(item, depth + 1)
        else:
            yield depth, elem.keyword, str(elem.value)


def test_identity_values_are_valid_distinctive_and_per_subject() -> None:
    first, second = identity_for("EPL31_LHS_0001"), identity_for("EPL31_LHS_0002")
    assert set(PLANTED) <= set(first.values)
    for keyword, value in first.values.items():
        validate_value(dictionary_VR(keyword), value, config.RAISE)
        if keyword != "PatientSex":
            assert len(value) >= 6, keyword
            assert value != second.values[keyword], keyword
    with pytest.raises(ValueError):
        identity_for("no_number_here")


def test_plant_identity_is_deterministic_and_nests_to_depth_two() -> None:
    identity = identity_for("EPL31_LHS_0001")
    planted = []
    for _ in range(2):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        plant_identity(ds, identity, session="EPL31_LHS_0001_01", series="ct", instance=3)
        planted.append(ds)
    a, b = planted
    assert a.SOPInstanceUID == b.SOPInstanceUID == a.file_meta.MediaStorageSOPInstanceUID
    assert a.StudyInstanceUID == b.StudyInstanceUID and a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.InstanceNumber == 3
    assert a.ReferencedPatientSequence[0].OtherPatientIDsSequence[0].PatientAddress == identity.values["PatientAddress"]
    # CT_small's own nested PatientIDs are overwritten too: one value per keyword at every depth.
    for _, keyword, value in _all_values(a):
        if keyword in identity.values:
            assert value == identity.values[keyword], keyword


def test_tree_matches_oracle_and_covers_every_input_kind(tree: ExampleTree) -> None:
    assert set(tree.identities) == {"EPL31_LHS_0001", "EPL31_LHS_0002"}
    assert set(tree.expected_dicoms) == {
        ("EPL31_LHS_0001", "EPL31_LHS_0001_01"),
        ("EPL31_LHS_0001", "EPL31_LHS_0001_02"),
        ("EPL31_LHS_0002", "EPL31_LHS_0002_01"),
    }
    for (subject, session), expected in tree.expected_dicoms.items():
        assert len(expected) == len(set(expected))
        assert sorted(_instances(tree, subject, session)) == sorted(expected)
        for rel in tree.non_dicom[(subject, session)]:
            assert not is_dicom(tree.session_dir(subject, session) / rel)

    files = [p for p in tree.root.rglob("*") if p.is_file()]
    names = [p.name for p in files]
    for suffix in (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".zip", ".ZIP"):
        assert any(n.endswith(suffix) for n in names), suffix
    assert any("." not in n for n in names)  # odd names like IM0001
    assert any(n.endswith(".json") for n in names) and any(n.endswith(".txt") for n in names)
    first_session = tree.expected_dicoms[("EPL31_LHS_0001", "EPL31_LHS_0001_01")]
    assert "dwi_scan/dwi_scan/series1/IM1.dcm" in first_session
    assert 40 <= sum(len(v) for v in tree.expected_dicoms.values()) <= 60
    assert sum(p.stat().st_size for p in files) < 5_000_000


def test_every_instance_reads_back_with_planted_values(tree: ExampleTree) -> None:
    syntaxes, frames = set(), set()
    for subject, session in tree.expected_dicoms:
        values = tree.identities[subject].values
        seen: set[str] = set()
        for rel, data in _instances(tree, subject, session).items():
            assert data[128:132] == b"DICM", rel  # preamble + file meta
            ds = pydicom.dcmread(io.BytesIO(data))
            syntaxes.add(ds.file_meta.TransferSyntaxUID)
            frames.add(int(ds.get("NumberOfFrames", 1)))
            assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
            for keyword in ("PatientName", "PatientBirthDate", "PatientID"):
                assert str(ds[keyword].value) == values[keyword], (rel, keyword)
            depth2 = ds.ReferencedPatientSequence[0].OtherPatientIDsSequence[0]
            assert depth2.PatientAddress == values["PatientAddress"], rel
            for _depth, keyword, value in _all_values(ds):
                if keyword in values:
                    assert value == values[keyword], (rel, keyword)
                    seen.add(keyword)
        assert set(PLANTED) <= seen, (subject, session)
    assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"} <= syntaxes
    assert any(uid.is_compressed for uid in syntaxes)
    assert max(frames) > 1


def test_uids_are_unique_per_instance_and_shared_per_session(tree: ExampleTree) -> None:
    sop_uids = []
    for subject, session in tree.expected_dicoms:
        studies = set()
        for data in _instances(tree, subject, session).values():
            ds = pydicom.dcmread(io.BytesIO(data))
            sop_uids.append(ds.SOPInstanceUID)
            studies.add(ds.StudyInstanceUID)
        assert len(studies) == 1
    assert len(sop_uids) == len(set(sop_uids))


def test_build_is_byte_reproducible(tree: ExampleTree, tmp_path: Path) -> None:
    again = build_example_tree(tmp_path / "again")
    first = {p.relative_to(tree.root): p.read_bytes() for p in tree.root.rglob("*") if p.is_file()}
    second = {p.relative_to(again.root): p.read_bytes() for p in again.root.rglob("*") if p.is_file()}
    assert first == second
    assert again.expected_dicoms == tree.expected_dicoms


def test_refuses_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "stale.dcm").write_bytes(b"")
    with pytest.raises(FileExistsError):
        build_example_tree(tmp_path)
