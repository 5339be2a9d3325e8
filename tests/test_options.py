"""Options real studies need, each run end to end on the example tree of real DICOMs."""

from __future__ import annotations

import csv
import json
import os
import stat
import zipfile

import pydicom
import pytest

from dicom_deid.example_tree import build_example_tree
from dicom_deid.stages.publish import write_zip
from helpers import elements, files_below, planted_values, run_snakemake

S1, S2 = "EPL31_LHS_0001", "EPL31_LHS_0002"


def test_html_report_is_self_contained_and_holds_no_identifier(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    run_snakemake(tmp_path)
    page = (tmp_path / "output" / "reports" / "report.html").read_text()
    for section in ("Sessions", "Verification checks", "Skipped files", "Versions and configuration", "<svg"):
        assert section in page
    for _, session in tree.expected_dicoms:
        assert session in page
    assert "notes.txt" in page and "0.19.0" in page and "3.0.2" in page
    assert "src=" not in page and "href=" not in page  # nothing external to load
    key = (tmp_path / "keys" / "deid.key").read_text().strip()
    assert key not in page
    assert not [v for v in planted_values(tree) if v.decode() in page]


def test_data2bids_layout_writes_one_verified_zip_per_session(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    run_snakemake(tmp_path, "--config", "output_layout=data2bids")
    for (subject, session), expected in tree.expected_dicoms.items():
        ses = session.removeprefix(subject + "_")
        label = f"{subject}_SE{ses}_MRI"
        path = tmp_path / "output" / "imaging" / subject / f"{label}.zip"
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
            assert sorted(archive.namelist()) == sorted(expected)
            for name in archive.namelist():
                with archive.open(name) as member:
                    dataset = pydicom.dcmread(member)
                assert str(dataset.PatientName) == label
                content = archive.read(name)
                assert not [v for v in planted_values(tree) if v in content], name
    assert not (tmp_path / "output" / S1).exists()  # no mirrored folders beside the zips
    assert not list(tmp_path.glob("output/imaging/*/.*.partial"))


def test_a_zip_that_cannot_be_written_leaves_nothing_in_the_output(tmp_path):
    staged, target = tmp_path / "files", tmp_path / "output" / "imaging" / "S" / "S_SE01_MRI.zip"
    staged.mkdir()
    (staged / "a.dcm").write_bytes(b"DICOM")
    with pytest.raises(FileNotFoundError):
        write_zip(staged, ["a.dcm", "vanished.dcm"], target)
    assert list(target.parent.iterdir()) == []
    # Two names that the zip would show alike (a byte that is not UTF-8 is written %XX) are refused, not merged.
    with pytest.raises(OSError, match=r"share the member name a%E4\.dcm"):
        write_zip(staged, ["a%E4.dcm", os.fsdecode(b"a\xe4.dcm")], target)
    assert list(target.parent.iterdir()) == []


def test_keep_list_keeps_dates_and_report_records_it(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    # A kept date beside the moved ones gives the subject's offset away: only with the override.
    refused = run_snakemake(tmp_path, "-n", "--config", "keep=[StudyDate,SeriesDate]", check=False)
    assert refused.returncode != 0 and "keep: StudyDate is a date: kept beside the dates moved" in refused.stdout
    run_snakemake(tmp_path, "--config", "keep=[StudyDate,SeriesDate]", "allow_keep_identifying=True")
    relpath = "anat/t1/IM_0001.dcm"
    original = pydicom.dcmread(tree.session_dir(S1, f"{S1}_01") / relpath)
    out = pydicom.dcmread(tmp_path / "output" / S1 / "imaging" / f"{S1}_01" / relpath)
    assert out.StudyDate == original.StudyDate and out.SeriesDate == original.SeriesDate
    assert out.InstanceCreationDate != original.InstanceCreationDate  # not kept: still shifted
    report = json.loads((tmp_path / "output" / "reports" / S1 / f"{S1}_01.json").read_text())
    assert report["settings"]["keep"] == ["StudyDate", "SeriesDate"]
    assert "StudyDate" in (tmp_path / "output" / "reports" / "report.html").read_text()


@pytest.mark.parametrize("keyword", ["PatientID", "PatientAddress", "PatientName"])
def test_keeping_an_identifying_tag_needs_the_override(tmp_path, keyword):
    tree = build_example_tree(tmp_path / "input")
    refused = run_snakemake(tmp_path, "-n", "--config", f"keep=[{keyword}]", check=False)
    assert refused.returncode != 0 and f"keep: {keyword} identifies the patient" in refused.stdout
    run_snakemake(tmp_path, "--config", f"keep=[{keyword}]", "allow_keep_identifying=True")
    out = pydicom.dcmread(tmp_path / "output" / S2 / "imaging" / f"{S2}_01" / "anat/t1/IM_0001.dcm")
    assert getattr(out, keyword) == tree.identities[S2].values[keyword]


def test_unknown_keep_keyword_is_refused(tmp_path):
    build_example_tree(tmp_path / "input")
    result = run_snakemake(tmp_path, "-n", "--config", "keep=[StudyDat]", check=False)
    assert result.returncode != 0 and "keep: StudyDat is not a DICOM attribute keyword" in result.stdout


def test_private_tags_remove_drops_every_private_element(tmp_path):
    build_example_tree(tmp_path / "input")
    run_snakemake(tmp_path, "--config", "private_tags=remove")
    outputs = [p for p in files_below(tmp_path / "output" / S1) if p.name != ".snakemake_timestamp"]
    assert outputs
    for path in outputs:
        assert not [e.tag for e in elements(pydicom.dcmread(path)) if e.tag.is_private], path
    kept = tmp_path / "kept"
    build_example_tree(kept / "input")
    run_snakemake(kept)
    assert any(
        e.tag.is_private
        for path in files_below(kept / "output" / S1)
        if path.name != ".snakemake_timestamp"
        for e in elements(pydicom.dcmread(path))
    ), "by default the vendor private elements stay"


def test_crosswalk_maps_originals_to_pseudonyms_privately(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    crosswalk = tmp_path / "private" / "crosswalk.tsv"
    run_snakemake(tmp_path, "--config", f"crosswalk_file={crosswalk}")
    assert stat.S_IMODE(crosswalk.stat().st_mode) == 0o600
    with open(crosswalk) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    by_session = {}
    for row in rows:
        by_session.setdefault(row["session"], []).append(row)
    assert set(by_session) == {session for _, session in tree.expected_dicoms}
    for row in rows:
        subject = row["session"].rsplit("_", 1)[0]
        out_dir = tmp_path / "output" / subject / "imaging" / row["session"]
        pseudonyms = {pydicom.dcmread(p).PatientID for p in files_below(out_dir) if p.suffix == ".dcm"}
        assert row["original_patient_id"] == tree.identities[subject].values["PatientID"]
        assert pseudonyms == {row["pseudonymous_patient_id"]}
    # Rerunning adds nothing twice; the crosswalk never leaks into the output.
    run_snakemake(tmp_path, "--forcerun", "anonymize_session", "--config", f"crosswalk_file={crosswalk}")
    with open(crosswalk) as handle:
        assert len(list(csv.DictReader(handle, delimiter="\t"))) == len(rows)
    for path in files_below(tmp_path / "output", tmp_path / "logs"):
        assert tree.identities[S1].values["PatientID"].encode() not in path.read_bytes()


def test_crosswalk_inside_output_is_a_config_error(tmp_path):
    build_example_tree(tmp_path / "input")
    result = run_snakemake(tmp_path, "-n", "--config", "crosswalk_file=output/crosswalk.tsv", check=False)
    assert (
        result.returncode != 0 and "crosswalk_file output/crosswalk.tsv must not lie inside output_dir" in result.stdout
    )


def test_progress_is_logged(tmp_path):
    build_example_tree(tmp_path / "input")
    run_snakemake(tmp_path)
    log = (tmp_path / "logs" / "anonymize_session" / S1 / f"{S1}_01.log").read_text()
    assert "17 files to de-identify" in log and "17/17 files done" in log and "files/s" in log
