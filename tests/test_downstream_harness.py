"""The downstream harness itself: it must see what it is meant to see, so it cannot pass by construction.

Each check is shown both ways: an unchanged input compares equal, and a known corruption (private tags
stripped, one pixel changed, a sidecar field changed, a bad UID) is reported. Tests that need dcm2niix,
dciodvfy or nibabel skip when one is missing, unless DEID_REQUIRE_TOOLS is set (CI), where they fail.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

import downstream
import vendor_data

REQUIRE_TOOLS = bool(os.environ.get("DEID_REQUIRE_TOOLS"))


def _missing(tools: tuple[str, ...]) -> list[str]:
    missing = []
    for tool in tools:
        if tool == "nibabel":
            if importlib.util.find_spec("nibabel") is None:
                missing.append(tool)
            continue
        try:
            downstream.tool_path(tool)
        except downstream.ToolMissing:
            missing.append(tool)
    return missing


def needs(*tools: str) -> pytest.MarkDecorator:
    """Skip without the tools, but only where DEID_REQUIRE_TOOLS is unset: CI must not skip silently."""
    missing = _missing(tools)
    return pytest.mark.skipif(
        bool(missing) and not REQUIRE_TOOLS,
        reason=f"{', '.join(missing)} not installed (pip install -r requirements-test.txt)",
    )


def vendor_dataset(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(vendor_data.VENDOR_FILES[name].load()))


def write_dwi_pair(folder: Path, change=None) -> Path:
    """Siemens' b=0 and b=1000 mosaics of one series: dcm2niix makes one 2-volume DWI with bval and bvec."""
    folder.mkdir(parents=True)
    for name in ("siemens_dwi_b0", "siemens_dwi_b1000"):
        ds = vendor_dataset(name)
        if change is not None:
            change(ds)
        ds.save_as(folder / f"{name}.dcm")
    return folder


@needs("dcm2niix", "nibabel")
def test_converting_the_same_input_twice_compares_equal(tmp_path):
    dicom_dir = write_dwi_pair(tmp_path / "in")
    first = downstream.convert(dicom_dir, tmp_path / "first")
    second = downstream.convert(dicom_dir, tmp_path / "second")

    assert downstream.compare(first, second) == []
    # Not vacuous: there is a DWI with real b-values, gradients and private-derived sidecar fields.
    (series,) = first.values()
    assert series.bval.split() == ["0", "1000"]
    assert series.bvec is not None
    assert {"SliceTiming", "PhaseEncodingDirection", "TotalReadoutTime"} <= set(series.sidecar)


@needs("dcm2niix", "nibabel")
def test_removing_private_tags_shows_as_lost_bvalues_and_sidecar_fields(tmp_path):
    before = downstream.convert(write_dwi_pair(tmp_path / "in"), tmp_path / "before")
    stripped = write_dwi_pair(tmp_path / "stripped", lambda ds: ds.remove_private_tags())
    after = downstream.convert(stripped, tmp_path / "after")

    problems = downstream.compare(before, after)
    assert any(".bval differs" in problem for problem in problems), problems
    assert any(".bvec differs" in problem for problem in problems), problems
    assert any("sidecar lost SliceTiming" in problem for problem in problems), problems


@needs("dcm2niix", "nibabel")
def test_one_changed_pixel_shows_as_a_voxel_difference(tmp_path):
    def change_one_pixel(ds):
        pixels = bytearray(ds.PixelData)
        pixels[len(pixels) // 2] ^= 0x01
        ds.PixelData = bytes(pixels)

    before = downstream.convert(write_dwi_pair(tmp_path / "in"), tmp_path / "before")
    after = downstream.convert(write_dwi_pair(tmp_path / "changed", change_one_pixel), tmp_path / "after")

    problems = downstream.compare(before, after)
    assert any("voxel data differ" in problem for problem in problems), problems


@needs("dcm2niix", "nibabel")
def test_a_changed_header_field_shows_in_the_sidecar_and_an_ignored_one_does_not(tmp_path):
    before = downstream.convert(write_dwi_pair(tmp_path / "in"), tmp_path / "before")

    def retime(ds):
        ds.RepetitionTime = "7000"
        ds.StationName = "ELSEWHERE01"

    after = downstream.convert(write_dwi_pair(tmp_path / "changed", retime), tmp_path / "after")

    problems = downstream.compare(before, after)
    assert [p for p in problems if "RepetitionTime" in p], problems
    assert not [p for p in problems if "StationName" in p], problems
    assert [p for p in downstream.compare(before, after, ignored_keys=()) if "StationName" in p]


@needs("dcm2niix", "nibabel")
def test_dicognito_changes_only_the_deidentified_sidecar_keys(tmp_path):
    """The ignore list is needed (without it dicognito's output differs) and suffices (with it, none)."""
    dicom_dir = write_dwi_pair(tmp_path / "in")
    deidentified = write_dwi_pair(tmp_path / "deid")
    subprocess.run(
        [sys.executable, "-m", "dicognito", "--in-place", "--seed", "harness", str(deidentified)],
        check=True,
        capture_output=True,
    )
    before = downstream.convert(dicom_dir, tmp_path / "before")
    after = downstream.convert(deidentified, tmp_path / "after")

    assert downstream.compare(before, after) == []
    unignored = downstream.compare(before, after, ignored_keys=())
    assert unignored
    assert all(any(key in p for key in downstream.DEIDENTIFIED_SIDECAR_KEYS) for p in unignored), unignored


@needs("dcm2niix", "nibabel")
def test_colliding_series_names_pair_up_by_content_not_by_uid(tmp_path):
    """Two series share number and description; swapping their UIDs swaps dcm2niix's a-suffix."""
    for folder, uids in (("original", ("1.2.3.9", "1.2.3.1")), ("remapped", ("1.2.3.1", "1.2.3.9"))):
        (tmp_path / folder).mkdir()
        for index, uid in enumerate(uids):
            ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
            ds.SeriesInstanceUID = uid
            ds.SOPInstanceUID = f"1.2.3.4.{index}"
            ds.PixelData = bytes([index + 1]) * len(ds.PixelData)
            ds.save_as(tmp_path / folder / f"{index}.dcm")
    before = downstream.convert(tmp_path / "original", tmp_path / "before")
    after = downstream.convert(tmp_path / "remapped", tmp_path / "after")

    def raw_voxels(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()[352:]).hexdigest()

    # dcm2niix itself named them the other way round: pairing by file name would report both as changed.
    assert raw_voxels(tmp_path / "before" / "1_.nii") != raw_voxels(tmp_path / "after" / "1_.nii")
    assert sorted(before) == ["1_", "1_a"]
    assert downstream.compare(before, after) == []


@needs("dciodvfy")
def test_a_uid_under_the_joint_iso_itu_root_is_a_new_dciodvfy_error(tmp_path):
    source = Path(get_testdata_file("MR_small.dcm"))
    unchanged = tmp_path / "unchanged.dcm"
    unchanged.write_bytes(source.read_bytes())
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = "2." + "1234567890" * 4
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    bad_uid = tmp_path / "bad_uid.dcm"
    ds.save_as(bad_uid)

    assert downstream.new_errors(source, unchanged) == []
    added = downstream.new_errors(source, bad_uid)
    assert any("Illegal root for UID" in e and "(0x0008,0x0018)" in e for e in added), added
    assert not any("1234567890" in e for e in added), "quoted values are blanked so errors compare by kind"


@needs("dciodvfy")
def test_errors_the_input_already_had_are_not_new(tmp_path):
    source = tmp_path / "qt1.dcm"
    source.write_bytes(vendor_data.VENDOR_FILES["siemens_qt1_map"].load())
    assert downstream.dciodvfy_errors(source), "this vendor file has errors of its own"
    assert downstream.new_errors(source, source) == []


@needs("nibabel")
@pytest.mark.filterwarnings("ignore:The DICOM readers are highly experimental")
@pytest.mark.parametrize("name", ["siemens_dwi_b0", "siemens_dwi_b1000"])
def test_planting_keeps_the_csa_header_readable_and_the_value_findable(name):
    from nibabel.nicom import csareader

    identity = vendor_data.identity_for("VENDOR_0001")
    planted = vendor_data.planting(vendor_data.VENDOR_FILES[name].load(), identity)
    ds = pydicom.dcmread(io.BytesIO(planted.data))

    series_header = csareader.read(ds[0x0029, 0x1020].value)
    protocol = series_header["tags"]["MrPhoenixProtocol"]["items"][0]
    csa_values = [p for p in planted.values if p.where.startswith("CSA")]
    assert {p.where for p in csa_values} == {"CSA series header tProtocolName", "CSA series header tReferenceImage0"}
    for value in csa_values:
        assert value.text in protocol
    assert csareader.get_b_value(csareader.read(ds[0x0029, 0x1010].value)) == (0 if name.endswith("b0") else 1000)


@needs("nibabel")
@pytest.mark.parametrize("name", sorted(vendor_data.VENDOR_FILES))
def test_every_planted_value_is_in_the_bytes_in_its_encoding(name):
    planted = vendor_data.planting(vendor_data.VENDOR_FILES[name].load(), vendor_data.identity_for("VENDOR_0001"))
    assert all(len(value.text) >= 8 for value in planted.values)
    for value in planted.values:
        assert value.encoding in vendor_data.found_in(planted.data, value.text), value
    history = [value for value in planted.values if value.encoding == "utf-16-le"]
    assert history, "every file carries a UTF-16-LE PatientID in a private element"


@needs("nibabel")
def test_vendor_tree_holds_every_vendor_file_in_data2bids_sessions(tmp_path):
    sessions = vendor_data.build_vendor_tree(tmp_path)
    assert sorted(name for s in sessions.values() for name in s.vendor_files) == sorted(vendor_data.VENDOR_FILES)
    for session, planted in sessions.items():
        subject = session.rsplit("_", 1)[0]
        for dicom in planted.dicoms:
            assert dicom.parent == tmp_path / subject / "imaging" / session
            assert pydicom.dcmread(dicom).PatientID == vendor_data.identity_for(subject).values["PatientID"]
    (dwi,) = [s for s in sessions.values() if "siemens_dwi_b1000" in s.vendor_files]
    assert dwi.vendor_files == ("siemens_dwi_b0", "siemens_dwi_b1000"), "one series, one session"


@needs("dcm2niix", "nibabel")
def test_the_vendor_trees_dwi_session_converts_with_its_b1000(tmp_path):
    sessions = vendor_data.build_vendor_tree(tmp_path / "tree")
    (dwi,) = [s for s in sessions.values() if "siemens_dwi_b1000" in s.vendor_files]
    (series,) = downstream.convert(dwi.dicoms[0].parent, tmp_path / "nifti").values()
    assert series.bval.split() == ["0", "1000"]


@needs("dcm2niix", "nibabel")
def test_planting_changes_no_sidecar_field_but_the_planted_ones(tmp_path):
    """The CSA and private plants must not disturb what dcm2niix reads, or planting would fake differences."""
    original, planted = tmp_path / "original", tmp_path / "planted"
    identity = vendor_data.identity_for("VENDOR_0001")
    for folder, load in ((original, lambda data: data), (planted, lambda data: vendor_data.plant(data, identity))):
        folder.mkdir()
        for name in ("siemens_dwi_b0", "siemens_dwi_b1000"):
            (folder / f"{name}.dcm").write_bytes(load(vendor_data.VENDOR_FILES[name].load()))
    planted_keys = ("PatientSex", "StudyDescription", "ProcedureStepDescription", "ImageComments")
    problems = downstream.compare(
        downstream.convert(original, tmp_path / "before"),
        downstream.convert(planted, tmp_path / "after"),
        downstream.DEIDENTIFIED_SIDECAR_KEYS + planted_keys,
    )
    assert problems == []


def test_a_missing_tool_names_the_requirements_file(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(downstream.ToolMissing, match=r"requirements-test\.txt"):
        downstream.tool_path("dcm2niix")
