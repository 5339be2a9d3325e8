"""The whole workflow, run by Snakemake on the example tree built from real packaged DICOMs."""

from __future__ import annotations

import csv
import io
import json
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicom_deid import tags
from dicom_deid.archives import archive_destination, archive_stem
from dicom_deid.example_tree import ExampleTree, build_example_tree
from dicom_deid.paths import session_input_dir, session_output_dir
from helpers import (
    checksums,
    elements,
    files_below,
    output_files,
    planted_values,
    read,
    run_snakemake,
    sessions_run,
)


@dataclass
class Run:
    workdir: Path
    tree: ExampleTree
    input_before: dict[str, str]
    log: str

    @property
    def output(self) -> Path:
        return self.workdir / "output"

    def session_out(self, subject: str, session: str) -> Path:
        return session_output_dir(self.output, subject, session.removeprefix(subject + "_"))


def _run_example(workdir: Path, *args: str) -> Run:
    tree = build_example_tree(workdir / "input")
    before = checksums(tree.root)
    result = run_snakemake(workdir, *args)
    return Run(workdir, tree, before, result.stdout)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return _run_example(tmp_path_factory.mktemp("example"))


def test_output_mirrors_input_and_holds_only_dicom_instances(run):
    for (subject, session), expected in run.tree.expected_dicoms.items():
        assert output_files(run.session_out(subject, session)) == sorted(expected)


def test_input_tree_is_untouched(run):
    assert checksums(run.tree.root) == run.input_before


def test_replaced_tags_changed_and_removed_tags_gone_at_every_depth(run):
    for (subject, session), expected in run.tree.expected_dicoms.items():
        planted = run.tree.identities[subject].values
        for relpath in expected:
            dataset = read(run.session_out(subject, session) / relpath)
            seen = {element.keyword for element in elements(dataset)}
            assert not seen & set(tags.REMOVED), relpath
            assert set(tags.REPLACED) <= seen, relpath  # kept present for viewers
            for element in elements(dataset):
                if element.keyword in tags.REPLACED:
                    assert str(element.value) != planted[element.keyword], (relpath, element.keyword)


def test_no_planted_identifier_anywhere_under_output_or_in_logs(run):
    planted = planted_values(run.tree)
    key = (run.workdir / "keys" / "deid.key").read_bytes().strip()
    places = [run.output, run.workdir / "logs", run.workdir / ".snakemake" / "log"]
    for path in files_below(*places):
        content = path.read_bytes()
        leaked = [value for value in planted if value in content]
        assert not leaked, (path, leaked)
        assert key not in content, path
    assert not any(value.encode() in run.log.encode() for value in [key.decode()]), "key in snakemake output"


def test_snakemakes_run_report_carries_the_workflows_page_and_summary_and_no_identifier(run, tmp_path):
    archive = tmp_path / "run-report.zip"
    run_snakemake(run.workdir, "--report", str(archive))
    with zipfile.ZipFile(archive) as report:
        files = {name: report.read(name) for name in report.namelist()}
    ours = [(run.output / "reports" / name).read_bytes() for name in ("report.html", "summary.tsv")]
    assert files["run-report/report.html"] not in ours  # Snakemake's own page, with ours beside it
    assert all(content in files.values() for content in ours)
    planted = planted_values(run.tree)
    key = (run.workdir / "keys" / "deid.key").read_bytes().strip()
    for name, content in files.items():
        assert not [value for value in planted if value in content] and key not in content, name


def test_original_uids_and_identifiers_gone_from_output_bytes(run):
    for (subject, session), expected in run.tree.expected_dicoms.items():
        for relpath in expected:
            original_uids = set()
            # The input path of an archive member is not on disk; compare against loose files only.
            source = run.tree.session_dir(subject, session) / relpath
            if source.exists():
                original = pydicom.dcmread(source)
                original_uids = {original.SOPInstanceUID, original.StudyInstanceUID, original.SeriesInstanceUID}
            content = (run.session_out(subject, session) / relpath).read_bytes()
            assert not [uid for uid in original_uids if uid.encode() in content], relpath


def test_pixel_data_and_transfer_syntax_unchanged(run):
    for (subject, session), expected in run.tree.expected_dicoms.items():
        for relpath in expected:
            source = run.tree.session_dir(subject, session) / relpath
            if not source.exists():
                continue
            original, output = pydicom.dcmread(source), read(run.session_out(subject, session) / relpath)
            assert output.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
            assert output.PixelData == original.PixelData


def test_reports_count_instances_and_list_skipped_files(run):
    with open(run.output / "reports" / "summary.tsv") as handle:
        rows = {row["session"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert set(rows) == {session for _, session in run.tree.expected_dicoms}
    for (subject, session), expected in run.tree.expected_dicoms.items():
        report = json.loads((run.output / "reports" / subject / f"{session}.json").read_text())
        assert report["counts"]["instances_written"] == len(expected) == int(rows[session]["instances_written"])
        assert sorted(s["path"] for s in report["skipped"]) == sorted(run.tree.non_dicom[(subject, session)])
        assert report["verification"] == "pass"
        assert rows[session]["patients"] == "1" == str(len(report["patient_groups"]))  # one planted PatientID each
        # One planted patient and one StudyDate per session: only what the sources show may need a look.
        assert "patient" not in rows[session]["needs_a_look"] and "days" not in rows[session]["needs_a_look"]
        assert all(check["result"] == "pass" for check in report["checks"].values())
        assert report["versions"] == {"dicognito": "0.19.0", "pydicom": "3.0.2"}


def test_pseudonyms_consistent_across_a_subjects_sessions(run):
    def patient_ids(subject, session):
        out = run.session_out(subject, session)
        return {read(out / relpath).PatientID for relpath in run.tree.expected_dicoms[(subject, session)]}

    first, second = (
        patient_ids("EPL31_LHS_0001", "EPL31_LHS_0001_01"),
        patient_ids("EPL31_LHS_0001", "EPL31_LHS_0001_02"),
    )
    other = patient_ids("EPL31_LHS_0002", "EPL31_LHS_0002_01")
    assert len(first) == 1 and first == second  # two jobs, one pseudonym
    assert first != other


def test_uid_mapping_consistent_across_jobs(run):
    # FrameOfReferenceUID comes unchanged from the same packaged file into several sessions;
    # separate jobs must map it to the same new UID.
    mapped = {}
    for (subject, session), expected in run.tree.expected_dicoms.items():
        for relpath in expected:
            source = run.tree.session_dir(subject, session) / relpath
            if source.exists() and "FrameOfReferenceUID" in (original := pydicom.dcmread(source)):
                new = read(run.session_out(subject, session) / relpath).FrameOfReferenceUID
                assert new != original.FrameOfReferenceUID
                mapped.setdefault(original.FrameOfReferenceUID, set()).add(new)
    assert mapped and all(len(new) == 1 for new in mapped.values())


def test_key_file_created_private_and_announced(run):
    key = run.workdir / "keys" / "deid.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "Created a new key file" in run.log


def test_rerun_does_nothing_then_new_subject_runs_alone(tmp_path):
    run = _run_example(tmp_path)
    assert "Nothing to be done" in run_snakemake(run.workdir).stdout
    existing = {p: p.stat().st_mtime_ns for p in files_below(run.output) if "reports" not in p.parts}

    shutil.copytree(
        run.tree.session_dir("EPL31_LHS_0002", "EPL31_LHS_0002_01"),
        run.tree.root / "EPL31_LHS_0003" / "imaging" / "EPL31_LHS_0003_01",
    )
    t2 = run.tree.session_dir("EPL31_LHS_0001", "EPL31_LHS_0001_02") / "anat" / "t2"
    result = run_snakemake(run.workdir)
    assert sessions_run(result.stdout) == {"EPL31_LHS_0003_01"}
    assert {p: p.stat().st_mtime_ns for p in existing} == existing

    # A file added anywhere in an existing session reruns that session only.
    shutil.copy(t2 / "IM_0001.dcm", t2 / "IM_0099.dcm")
    result = run_snakemake(run.workdir)
    assert sessions_run(result.stdout) == {"EPL31_LHS_0001_02"}
    assert (run.session_out("EPL31_LHS_0001", "EPL31_LHS_0001_02") / "anat/t2/IM_0099.dcm").exists()

    # A published session whose folder left the input (consent withdrawn) is named at every run: its output stays.
    shutil.rmtree(run.tree.session_dir("EPL31_LHS_0001", "EPL31_LHS_0001_02"))
    log = run_snakemake(run.workdir, "-n").stdout
    assert "session EPL31_LHS_0001_02 is no longer in the input; its output and report" in log
    assert run.session_out("EPL31_LHS_0001", "EPL31_LHS_0001_02").exists()


def test_same_input_and_key_give_byte_identical_output(run, tmp_path):
    (tmp_path / "keys").mkdir()
    shutil.copy2(run.workdir / "keys" / "deid.key", tmp_path / "keys" / "deid.key")
    # threads=1: one worker process; the first run used two. Results must not depend on it.
    again = _run_example(tmp_path, "--config", "threads=1")
    for subject, session in run.tree.expected_dicoms:
        assert checksums(again.session_out(subject, session)) == checksums(run.session_out(subject, session))
    assert (again.output / "reports" / "summary.tsv").read_bytes() == (
        run.output / "reports" / "summary.tsv"
    ).read_bytes()


def test_other_key_gives_other_pseudonyms(run, tmp_path):
    other = _run_example(tmp_path)
    relpath = "anat/t1/IM_0001.dcm"
    ours = read(run.session_out("EPL31_LHS_0001", "EPL31_LHS_0001_01") / relpath)
    theirs = read(other.session_out("EPL31_LHS_0001", "EPL31_LHS_0001_01") / relpath)
    assert ours.PatientID != theirs.PatientID and ours.SOPInstanceUID != theirs.SOPInstanceUID


def test_session_without_archives_skips_the_unpack_stage_until_one_appears(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    plain = ("EPL31_LHS_0002", "EPL31_LHS_0002_01")
    expected = set(tree.expected_dicoms[plain])
    for archive in [p for p in tree.session_dir(*plain).rglob("*") if archive_stem(p.name)]:
        members = archive_destination(archive.relative_to(tree.session_dir(*plain)).as_posix())
        expected = {path for path in expected if not path.startswith(members + "/")}
        archive.unlink()
    assert expected and expected != set(tree.expected_dicoms[plain])

    log = run_snakemake(tmp_path).stdout
    assert sessions_run(log, "unpack_archives") == {"EPL31_LHS_0001_01", "EPL31_LHS_0001_02"}
    assert sessions_run(log) == {"EPL31_LHS_0001_01", "EPL31_LHS_0001_02", "EPL31_LHS_0002_01"}
    out = session_output_dir(tmp_path / "output", "EPL31_LHS_0002", "01")
    assert set(output_files(out)) == expected

    # An archive added later gets the session its unpack stage, and its members into the output.
    shutil.copy(tree.session_dir("EPL31_LHS_0001", "EPL31_LHS_0001_01") / "exports/scans.zip", tree.session_dir(*plain))
    log = run_snakemake(tmp_path).stdout
    assert sessions_run(log, "unpack_archives") == sessions_run(log) == {"EPL31_LHS_0002_01"}
    assert set(output_files(out)) == expected | {"scans/DICOM/0001/IM1", "scans/DICOM/0002/IM1.dcm"}


def test_many_sessions_overlap_with_one_worker_each_largest_first(tmp_path):
    # 6 sessions on 2 cores (dicom_deid/scheduling.py): one worker per session job, the biggest session first.
    source = Path(get_testdata_file("MR_small.dcm"))
    for number, files in enumerate([2, 1, 6, 3, 1, 2], start=1):  # SUBJ3 is the largest
        session = session_input_dir(tmp_path / "input", f"SUBJ{number}", "01")
        session.mkdir(parents=True)
        for index in range(files):
            shutil.copy(source, session / f"IM{index}.dcm")
    log = run_snakemake(tmp_path, "--printshellcmds").stdout
    anonymize_commands = [line for line in log.splitlines() if line.startswith("Shell command: anonymize_session.py ")]
    assert len(anonymize_commands) == 6
    assert all(" --workers 1 " in line for line in anonymize_commands)
    assert log.count("mem_mb=900,") == 6  # memory asked for one worker, not for config's threads (2: 1300)
    started = [line.split("--session ")[1].split()[0] for line in anonymize_commands]
    assert set(started[:2]) == {"SUBJ3_01", "SUBJ4_01"}  # the two largest, side by side
    assert len(sessions_run(log)) == 6
    summary = (tmp_path / "output" / "reports" / "summary.tsv").read_text()
    assert summary.count("\tpublished\t") == 6


def test_names_that_hold_originals_are_published_renamed_and_the_reports_hold_none(tmp_path):
    # storescp receivers name each file <modality>.<SOP Instance UID>; some exports name folders, or archives,
    # after the patient. The output and the reports must not carry those originals.
    session = session_input_dir(tmp_path / "input", "EPL31_LHS_0001", "01")
    originals = set()
    for source, place in (("MR_small.dcm", "folder"), ("CT_small.dcm", "archive")):
        dataset = pydicom.dcmread(get_testdata_file(source))
        folder = f"{dataset.PatientName.family_name}_{dataset.PatientID}"
        name = f"{dataset.Modality}.{dataset.SOPInstanceUID}.dcm"
        originals |= {dataset.SOPInstanceUID, dataset.PatientID, dataset.PatientName.family_name}
        (session / folder).mkdir(parents=True, exist_ok=True)
        if place == "folder":
            dataset.save_as(session / folder / name, enforce_file_format=True)
            (session / folder / "notes.txt").write_text("not DICOM\n")
        else:
            buffer = io.BytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
            with zipfile.ZipFile(session / f"{folder}.zip", "w") as archive:
                archive.writestr(name, buffer.getvalue())
    run_snakemake(tmp_path)

    out = session_output_dir(tmp_path / "output", "EPL31_LHS_0001", "01")
    published = output_files(out)
    assert len(published) == 2
    for relpath in published:
        dataset = read(out / relpath)
        assert relpath.endswith(f"/{dataset.Modality}.{dataset.SOPInstanceUID}.dcm")
        assert relpath.split("/")[0] == f"{dataset.PatientName.family_name}_{dataset.PatientID}"
    below_output = [p for p in files_below(tmp_path / "output") if p.is_file()]
    assert [(p, o) for p in below_output for o in originals if o in p.as_posix() or o.encode() in p.read_bytes()] == []
    report = json.loads(next((tmp_path / "output" / "reports").rglob("EPL31_LHS_0001_01.json")).read_text())
    mr_folder = next(p.split("/")[0] for p in published if "/MR." in p)
    assert [item["path"] for item in report["skipped"]] == [f"{mr_folder}/notes.txt"]
    assert "Nothing to be done" in run_snakemake(tmp_path).stdout
