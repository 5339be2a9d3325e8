"""dicom_deid.anonymize on real packaged DICOMs with planted identifying values."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
from pathlib import Path

import pydicom
import pytest
from dicognito.anonymizer import Anonymizer
from pydicom.data import get_testdata_file, get_testdata_files

from dicom_deid import tags
from dicom_deid.archives import Limits
from dicom_deid.example_tree import identity_for, plant_identity
from dicom_deid.job import SessionError
from dicom_deid.records import FileResult, Outcome, Sources, default_policy
from dicom_deid.stages.anonymize import FileDeidentifier, anonymize_session
from dicom_deid.stages.unpack import list_sources
from helpers import DEFAULT_CONFIG, elements, zip_with_raw_names

SEED = "0123456789abcdef0123456789abcdef"
IDENTITY = identity_for("EPL31_LHS_0001")


def planted(source: str = "MR_small.dcm") -> pydicom.Dataset:
    dataset = pydicom.dcmread(get_testdata_file(source))
    plant_identity(dataset, IDENTITY, session="01", series="t1", instance=1)
    return dataset


def keyword_values(dataset: pydicom.Dataset) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for element in elements(dataset):
        found.setdefault(element.keyword, []).append(str(element.value))
    return found


@pytest.mark.parametrize("keyword", tags.REPLACED)
@pytest.mark.parametrize("source", ["MR_small.dcm", "CT_small.dcm", "MR_small_bigendian.dcm"])
def test_each_replaced_tag_gets_a_new_value_wherever_it_occurs(keyword, source):
    dataset = planted(source)
    before = keyword_values(dataset)[keyword]
    FileDeidentifier(default_policy(SEED)).anonymize(dataset)
    after = keyword_values(dataset).get(keyword, [])
    assert len(after) == len(before), "kept present, as viewers expect"
    assert IDENTITY.values[keyword] not in after


def test_removed_tags_gone_at_every_depth():
    dataset = planted()
    depths = {k: 0 for k in tags.REMOVED}
    for element in elements(dataset):
        if element.keyword in depths:
            depths[element.keyword] += 1
    assert all(count >= 2 for count in depths.values()), "the fixture plants them nested too"
    FileDeidentifier(default_policy(SEED)).anonymize(dataset)
    assert not set(keyword_values(dataset)) & set(tags.REMOVED)


def test_dicognito_alone_replaces_three_of_the_removed_tags():
    # Why the workflow strips them itself (see docs/tags.md).
    dataset = planted()
    Anonymizer(seed=SEED).anonymize(dataset)
    left = set(keyword_values(dataset)) & set(tags.REMOVED)
    assert left == {"PatientAddress", "RegionOfResidence", "CountryOfResidence"}


def test_institution_address_without_institution_name_is_replaced():
    dataset = planted()
    del dataset.InstitutionName
    dataset.InstitutionAddress = "1 HOSPITAL ROAD, TORONTO"
    FileDeidentifier(default_policy(SEED)).anonymize(dataset)
    assert dataset.InstitutionAddress and dataset.InstitutionAddress != "1 HOSPITAL ROAD, TORONTO"


def test_department_already_named_radiology_still_changes():
    dataset = planted()
    dataset.InstitutionalDepartmentName = "RADIOLOGY"
    FileDeidentifier(default_policy(SEED)).anonymize(dataset)
    assert dataset.InstitutionalDepartmentName not in ("", "RADIOLOGY")


def test_same_seed_same_pseudonyms_in_separate_anonymizers():
    first, second = planted(), planted()
    FileDeidentifier(default_policy(SEED)).anonymize(first)
    FileDeidentifier(default_policy(SEED)).anonymize(second)
    assert (first.PatientID, first.StudyInstanceUID, first.StudyDate) == (
        second.PatientID,
        second.StudyInstanceUID,
        second.StudyDate,
    )
    other = planted()
    FileDeidentifier(default_policy("another secret seed value 123456")).anonymize(other)
    assert other.PatientID != first.PatientID


@pytest.mark.parametrize(
    ("keyword", "bad"),
    [("StudyDate", "2020-01-15"), ("PatientBirthDate", "19710231"), ("AcquisitionDateTime", "2020-01-15T10:00")],
)
def test_malformed_dates_are_emptied_and_counted(keyword, bad):
    dataset = planted()
    setattr(dataset, keyword, bad)
    repaired = FileDeidentifier(default_policy(SEED)).anonymize(dataset).repaired
    assert getattr(dataset, keyword) == ""
    assert repaired == {keyword: 1}


def test_malformed_time_beside_a_valid_date_is_emptied():
    dataset = planted()
    dataset.StudyDate, dataset.StudyTime = "20200115", "25:61"
    repaired = FileDeidentifier(default_policy(SEED)).anonymize(dataset).repaired
    assert dataset.StudyTime == "" and dataset.StudyDate not in ("", "20200115")
    assert repaired == {"StudyTime": 1}


def test_malformed_date_inside_a_sequence_is_emptied():
    dataset = planted()
    dataset.RequestAttributesSequence[0].ScheduledProcedureStepStartDate = "15.01.20"
    repaired = FileDeidentifier(default_policy(SEED)).anonymize(dataset).repaired
    assert dataset.RequestAttributesSequence[0].ScheduledProcedureStepStartDate == ""
    assert repaired == {"ScheduledProcedureStepStartDate": 1}


def test_dicognito_alone_aborts_on_a_malformed_date():
    # Why MalformedDateCleaner exists.
    dataset = planted()
    dataset.StudyDate = "2020-01-15"
    with pytest.raises(ValueError):
        Anonymizer(seed=SEED).anonymize(dataset)


def test_process_file_writes_atomically_and_reports_outcomes(tmp_path):
    anonymizer = FileDeidentifier(default_policy(SEED))
    source = tmp_path / "in.dcm"
    planted().save_as(source, enforce_file_format=True)
    result = anonymizer.process_file(source, tmp_path / "out" / "a" / "in.dcm", "a/in.dcm")
    assert result.outcome == "written"
    assert [p.name for p in (tmp_path / "out" / "a").iterdir()] == ["in.dcm"]  # no partial left behind

    (tmp_path / "notes.txt").write_text("not an image")
    skipped = anonymizer.process_file(tmp_path / "notes.txt", tmp_path / "out" / "notes.txt", "notes.txt")
    assert (skipped.outcome, skipped.reason) == ("skipped", "notes.txt: not DICOM")
    assert not (tmp_path / "out" / "notes.txt").exists()


def test_a_file_named_as_long_as_the_file_system_allows_is_written(tmp_path):
    # 250 bytes, within the 255 allowed: the partial file, once named after it, was 14 bytes longer and failed.
    name = "x" * 246 + ".dcm"
    (tmp_path / "in").mkdir()
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "in" / name)
    result = FileDeidentifier(default_policy(SEED)).process_file(tmp_path / "in" / name, tmp_path / "out" / name, name)
    assert result.outcome == "written" and result.failures and not any(result.failures.values())
    assert [p.name for p in (tmp_path / "out").iterdir()] == [name]  # no partial left behind


def test_an_output_name_longer_than_the_file_system_allows_makes_the_file_bad(tmp_path):
    # MR_small as <description>_<PatientID>.dcm in 255 bytes: the pseudonym, 12 characters for "4MR1", makes the
    # output name 263 bytes.
    name = "x" * 246 + "_4MR1.dcm"
    (tmp_path / "in").mkdir()
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "in" / name)
    result = FileDeidentifier(default_policy(SEED)).process_file(tmp_path / "in" / name, tmp_path / "out" / name, name)
    assert result.outcome == "bad" and result.source == name and "4MR1" not in result.relpath
    assert result.reason == f"{result.relpath}: its output name would be 263 bytes, longer than the file system allows"
    assert list((tmp_path / "out").iterdir()) == []  # nor a partial file left behind


def test_any_other_error_writing_a_file_still_stops_the_job(tmp_path, monkeypatch):
    # Only a name too long is the file's own fault; a full disk must not turn every file into a bad one.
    from dicom_deid.stages import anonymize

    def disk_full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    source = Path(get_testdata_file("MR_small.dcm"))
    monkeypatch.setattr(anonymize.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        FileDeidentifier(default_policy(SEED)).process_file(source, tmp_path / "IM1.dcm", "IM1.dcm")


def test_file_without_file_meta_is_processed_and_written_with_it(tmp_path):
    source = Path(get_testdata_file("rtstruct.dcm"))
    result = FileDeidentifier(default_policy(SEED)).process_file(source, tmp_path / "rtstruct.dcm", "rtstruct.dcm")
    assert result.outcome == "written"
    written = pydicom.dcmread(tmp_path / "rtstruct.dcm")  # no force: has preamble and file meta now
    assert written.file_meta.TransferSyntaxUID


def _every_packaged_instance():
    from dicom_deid.dicomfile import BadDicom, DicomDir, NotDicom, read_instance

    for name in sorted(n for n in get_testdata_files("**/*") if Path(n).is_file()):
        try:
            yield name, read_instance(Path(name), Path(name).name)
        except (NotDicom, BadDicom, DicomDir):
            continue


def test_fast_path_changes_nothing_on_every_packaged_file():
    # The fast path skips, and leaves undecoded, only elements no handler would change. Such elements are
    # then written as their original bytes, where a decoded one may be re-padded; so compare what the
    # written files hold, element by element at every depth, not their bytes.
    fast, slow = FileDeidentifier(default_policy(SEED)), FileDeidentifier(default_policy(SEED, fast_path=False))
    assert fast.dicognito.fast_path is not None and slow.dicognito.fast_path is None
    compared = identical_bytes = 0
    for name, dataset in _every_packaged_instance():
        copy = pydicom.dcmread(name, force=True)
        if not hasattr(copy, "file_meta") or "TransferSyntaxUID" not in copy.file_meta:
            copy.file_meta = dataset.file_meta
        try:
            slow.anonymize(copy)
        except Exception:  # noqa: BLE001
            continue  # dicognito itself fails on this file; process_file reports such files as bad
        fast.anonymize(dataset)
        written = []
        for ds in (dataset, copy):
            buffer = io.BytesIO()
            pydicom.dcmwrite(buffer, ds)
            written.append(buffer.getvalue())
        identical_bytes += written[0] == written[1]
        reread = [pydicom.dcmread(io.BytesIO(data), force=True) for data in written]
        assert reread[0] == reread[1], name
        assert [(e.tag, e.VR, e.value) for e in elements(reread[0])] == [
            (e.tag, e.VR, e.value) for e in elements(reread[1])
        ], name
        compared += 1
    assert compared > 150, compared  # most of pydicom's ~240 files
    assert identical_bytes > compared * 0.8  # most differ in no byte at all


def test_every_packaged_file_is_written_and_checked_or_reported(tmp_path):
    anonymizer = FileDeidentifier(default_policy(SEED))
    outcomes: dict[str, list[str]] = {}
    names = sorted(n for n in get_testdata_files("**/*") if Path(n).is_file())
    for number, name in enumerate(names):
        result = anonymizer.process_file(Path(name), tmp_path / f"{number}.dcm", Path(name).name)
        outcomes.setdefault(result.outcome.value, []).append(Path(name).name)
        if result.outcome == "written":
            failed = sorted(check for check, items in result.failures.items() if items)
            if failed:
                outcomes.setdefault("flagged", []).append(f"{Path(name).name}: {failed}")
        else:
            assert result.reason.startswith(Path(name).name), result
    assert len(outcomes["written"]) > 200
    assert "DICOMDIR" in outcomes["dropped"]
    # Every original value dicognito leaves elsewhere (PatientName in StudyDescription, StudyID in rtstruct's
    # StructureSetLabel, UIDs copied into private elements) is scrubbed; an InstitutionName equal to the kept
    # Manufacturer, or to the writing software's ImplementationVersionName, identifies nobody.
    assert outcomes.get("flagged", []) == []


def test_a_fragment_without_sop_uids_is_bad_and_the_reason_says_what_is_missing(tmp_path):
    # pydicom's nested_priv_SQ.dcm holds one private sequence and file meta, nothing that makes it an instance.
    source = Path(get_testdata_file("nested_priv_SQ.dcm"))
    result = FileDeidentifier(default_policy(SEED)).process_file(source, tmp_path / "out.dcm", "a/frag.dcm")
    assert result.outcome == "bad"
    assert result.reason == (
        "a/frag.dcm: has no SOPClassUID and no SOPInstanceUID: not a DICOM instance, cannot be written as a DICOM file"
    )
    assert not (tmp_path / "out.dcm").exists()


def test_the_written_file_meta_and_preamble_are_the_writers_not_the_originals(tmp_path):
    # pydicom's CT_small as shipped: its file meta names the AE title of the node that sent it, its preamble is a
    # TIFF header and its trailing padding the TIFF directory, which point into the original file, not the output.
    source = Path(get_testdata_file("CT_small.dcm"))
    original = pydicom.dcmread(source)
    assert original.file_meta.SourceApplicationEntityTitle and original.preamble.startswith(b"II*")
    assert tags.TRAILING_PADDING in original
    result = FileDeidentifier(default_policy(SEED)).process_file(source, tmp_path / "ct.dcm", "ct.dcm")
    assert result.outcome == "written" and not any(result.failures.values())
    written = pydicom.dcmread(tmp_path / "ct.dcm")
    assert {element.keyword for element in written.file_meta} <= tags.FILE_META_WRITTEN
    assert written.preamble == bytes(128) and tags.TRAILING_PADDING not in written
    assert written.file_meta.ImplementationVersionName == f"PYDICOM {pydicom.__version__}"
    assert written.file_meta.MediaStorageSOPInstanceUID == written.SOPInstanceUID != original.SOPInstanceUID
    assert original.file_meta.SourceApplicationEntityTitle.encode() not in (tmp_path / "ct.dcm").read_bytes()


def storescp_file(root: Path, source: str = "MR_small.dcm") -> tuple[str, pydicom.Dataset]:
    """A file as storescp receivers name it (<modality>.<SOP Instance UID>), in a folder named after the patient."""
    dataset = pydicom.dcmread(get_testdata_file(source))
    relpath = f"{dataset.PatientName.family_name}_{dataset.PatientID}/{dataset.Modality}.{dataset.SOPInstanceUID}.dcm"
    (root / relpath).parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(root / relpath, enforce_file_format=True)
    return relpath, dataset


def test_file_and_folder_names_get_the_files_new_uid_and_pseudonyms(tmp_path):
    relpath, original = storescp_file(tmp_path / "in")
    result = FileDeidentifier(default_policy(SEED)).process_file(
        tmp_path / "in" / relpath, tmp_path / "out" / relpath, relpath
    )
    assert result.failures and not any(result.failures.values())
    written = pydicom.dcmread(tmp_path / "out" / result.relpath)
    assert result.relpath == f"{written.PatientName.family_name}_{written.PatientID}/MR.{written.SOPInstanceUID}.dcm"
    assert result.source_relpath == relpath and result.source == relpath
    assert [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.dcm")] == [result.relpath]
    for value in (original.SOPInstanceUID, original.PatientID, original.PatientName.family_name):
        assert value not in result.relpath


def test_a_folder_named_after_the_patient_in_latin1_bytes_is_renamed_and_checked(tmp_path, monkeypatch):
    # A Latin-1 system names a folder for the patient Müller b"M\xfcller": renamed as its UTF-8 twin is.
    from dicom_deid.stages import anonymize

    dataset = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    dataset.SpecificCharacterSet, dataset.PatientName = "ISO_IR 100", "Müller^Hans"
    relpath = os.fsdecode(b"M\xfcller/IM1.dcm")
    (tmp_path / "in" / relpath).parent.mkdir(parents=True)
    dataset.save_as(tmp_path / "in" / relpath, enforce_file_format=True)
    worker = FileDeidentifier(default_policy(SEED))
    result = worker.process_file(tmp_path / "in" / relpath, tmp_path / "out" / relpath, relpath)
    written = pydicom.dcmread(tmp_path / "out" / result.relpath)
    assert result.relpath == f"{written.PatientName.family_name}/IM1.dcm" and not any(result.failures.values())
    # The verifier finds it on its own, had the renaming missed it.
    monkeypatch.setattr(anonymize, "scrub_path", lambda relpath, pairs: relpath)
    result = worker.process_file(tmp_path / "in" / relpath, tmp_path / "out2" / relpath, relpath)
    assert result.outcome.name == "BAD" and "PatientName" in result.reason and "XXXXX" in result.relpath


@pytest.mark.parametrize("folder", ["MUELLER_HANS", "Mueller Hans", "muller_hans", "MÜLLER HANS"])
def test_a_folder_named_after_the_patient_in_another_spelling_is_renamed_and_checked(tmp_path, monkeypatch, folder):
    # Folders typed by hand or by an exporter spell the PatientName Müller^Hans otherwise: in capitals, without
    # the umlaut (ue, or u). Each such spelling held the patient's name into the output path, verification pass.
    from dicom_deid.stages import anonymize

    dataset = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    dataset.SpecificCharacterSet, dataset.PatientName = "ISO_IR 192", "Müller^Hans"
    relpath = f"{folder}/IM1.dcm"
    (tmp_path / "in" / folder).mkdir(parents=True)
    dataset.save_as(tmp_path / "in" / relpath, enforce_file_format=True)
    (tmp_path / "in" / folder / f"{folder} notes.txt").write_text("notes")
    worker = FileDeidentifier(default_policy(SEED))
    result = worker.process_file(tmp_path / "in" / relpath, tmp_path / "out" / relpath, relpath)
    assert result.outcome.name == "WRITTEN" and not any(result.failures.values())
    for name in ("MUELLER", "Mueller", "muller", "MÜLLER", "HANS", "Hans", "hans"):
        assert name not in result.relpath
    notes = FileResult(f"{folder}/{folder} notes.txt", Outcome.SKIPPED, "not DICOM")
    anonymize.name_unwritten_files([result, notes], Sources([]))
    assert notes.relpath.split("/")[0] == result.relpath.split("/")[0] and folder not in notes.relpath
    # The verifier finds it on its own, had the renaming missed it.
    monkeypatch.setattr(anonymize, "scrub_path", lambda relpath, pairs: relpath)
    result = worker.process_file(tmp_path / "in" / relpath, tmp_path / "out2" / relpath, relpath)
    assert result.outcome.name == "BAD" and "PatientName" in result.reason and folder not in result.relpath


@pytest.mark.parametrize(
    ("patient", "raw_name"),
    [
        ("Müller^Jürgen", "Müller_Jürgen.dcm".encode()),  # Info-ZIP under LC_ALL=C, macOS
        ("Müller^Jürgen", "Müller Jürgen.dcm".encode("cp1252")),  # a Windows exporter
        ("Müller^Jürgen", "Müller_Jürgen.dcm".encode("cp437")),  # the zip format's own code page: ü is 0x81
        ("Møller^Jørgen", "Møller_Jørgen.dcm".encode("cp850")),  # Windows' zip in Western Europe: ø is 0x9B
    ],
    ids=["utf_8", "cp1252", "cp437", "cp850"],
)
def test_a_zip_member_named_after_the_patient_without_the_utf8_flag_is_renamed(tmp_path, patient, raw_name):
    # Unpacked under zipfile's cp437 reading of its name ("M├╝ller_J├╝rgen.dcm"), the name scrub missed the
    # patient's name and the output file was named after the patient; in the DOS code pages it still did.
    dataset = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    dataset.SpecificCharacterSet, dataset.PatientName = "ISO_IR 192", patient
    encoded = io.BytesIO()
    dataset.save_as(encoded, enforce_file_format=True)
    (tmp_path / "session").mkdir()
    zip_with_raw_names(tmp_path / "session" / "export.zip", [(raw_name, encoded.getvalue())])
    limits = Limits.from_config(DEFAULT_CONFIG["archives"])
    sources = list_sources(tmp_path / "session", tmp_path / "members", limits)

    [result] = anonymize_session(sources, tmp_path / "out", default_policy(SEED), 1, "S_01")

    pseudonym = pydicom.dcmread(tmp_path / "out" / result.relpath).PatientName
    separator = " " if b" " in raw_name else "_"
    assert result.relpath == f"export/{pseudonym.family_name}{separator}{pseudonym.given_name}.dcm"
    assert result.source == f"export/{os.fsdecode(raw_name)}"
    for value in patient.split("^"):
        for encoding in tags.NAME_ENCODINGS:
            with contextlib.suppress(UnicodeEncodeError):  # ø has no cp437 byte
                assert value.encode(encoding) not in os.fsencode(result.relpath)


def test_a_name_the_workflow_could_not_replace_makes_the_file_bad_and_is_never_shown(tmp_path, monkeypatch):
    # The verifier checks the output path on its own: had the renaming missed the UID, the file is not written,
    # and the message names it with the original masked.
    from dicom_deid.stages import anonymize

    monkeypatch.setattr(anonymize, "scrub_path", lambda relpath, pairs: relpath)
    relpath, original = storescp_file(tmp_path / "in")
    result = FileDeidentifier(default_policy(SEED)).process_file(
        tmp_path / "in" / relpath, tmp_path / "out" / relpath, relpath
    )
    assert result.outcome.name == "BAD" and result.source == relpath
    assert not (tmp_path / "out").exists()
    for value in (original.SOPInstanceUID, original.PatientID, "CompressedSamples"):
        assert value not in result.relpath and value not in result.reason
    assert "its file or folder name holds the original" in result.reason and "SOPInstanceUID" in result.reason


def test_a_session_without_one_dicom_instance_fails_and_lists_what_it_holds(tmp_path):
    # Only notes and a DICOMDIR: published, the session would look exported with nothing in it.
    (tmp_path / "notes.txt").write_text("scan notes")
    (tmp_path / "DICOMDIR").write_bytes(Path(get_testdata_file("DICOMDIR")).read_bytes())
    sources = Sources([(name, str(tmp_path / name)) for name in ("DICOMDIR", "notes.txt")])
    with pytest.raises(SessionError) as failed:
        anonymize_session(sources, tmp_path / "out", default_policy(SEED), 1, "S_01")
    assert str(failed.value).startswith("session S_01: 2 file(s), not one of them a DICOM instance, nothing written")
    # Nothing was read to tell whether a name identifies, so the reports number the files (withhold_names).
    assert [(f.path, f.reason) for f in failed.value.failures] == [
        ("name-withheld-1", "DICOMDIR dropped (it indexes patient identifiers; rebuild it from the output)"),
        ("name-withheld-2", "not DICOM"),
    ]


def test_names_in_a_session_where_no_file_could_be_read_are_withheld_from_the_reports(tmp_path, caplog):
    # A copy cut short, a doctor's letter and an export that would not unpack, all named after the patient: with
    # no file read there is no value to clear those names with, so the reports in the output number them, and
    # only the log (outside the output) says which is which.
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (tmp_path / "Mueller_Hans").mkdir()
    (tmp_path / "Mueller_Hans" / "IM1.dcm").write_bytes(data[:600])
    (tmp_path / "Befund Mueller Hans.pdf").write_bytes(b"%PDF-1.4")
    files = [(name, str(tmp_path / name)) for name in ("Befund Mueller Hans.pdf", "Mueller_Hans/IM1.dcm")]
    problems = [
        "Mueller_Hans.zip: member 'Mueller_Hans/IM2.dcm' is a link",
        "IM3.dcm: both file IM3.dcm and member IM3.dcm of Mueller_Hans.tar map to this output path",
    ]
    sources = Sources(files, problems=list(problems))
    with caplog.at_level("INFO"), pytest.raises(SessionError) as failed:
        anonymize_session(sources, tmp_path / "out", default_policy(SEED), 1, "S_01")
    shown = [(f.path, f.reason) for f in failed.value.failures]
    assert shown == [
        ("name-withheld-1", "member (name withheld) is a link"),
        ("name-withheld-2", "two input files map to this output path"),
        ("name-withheld-4", "file is truncated (it ends inside the header of a data element)"),
    ]  # name-withheld-3, the letter, is skipped, not bad: the log names it too
    assert "Mueller" not in str(failed.value) and "Mueller" not in str(shown)
    assert sources.problems == [f"{path}: {reason}" for path, reason in shown[:2]]  # as the publish stage reads them
    log = caplog.text
    assert "Mueller_Hans/IM1.dcm is named name-withheld-4 in the reports" in log
    assert "Mueller_Hans.zip is shown as name-withheld-1 in the reports" in log
    assert "Befund Mueller Hans.pdf is named name-withheld-3 in the reports" in log


def test_names_are_withheld_only_where_no_file_could_be_read(tmp_path):
    # Beside one good file, a cut file keeps its name: the good file's values clear what they can.
    good = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    (tmp_path / "IM1.dcm").write_bytes(good)
    (tmp_path / "IM2.dcm").write_bytes(good[:600])
    sources = Sources([(name, str(tmp_path / name)) for name in ("IM1.dcm", "IM2.dcm")])
    with pytest.raises(SessionError) as failed:
        anonymize_session(sources, tmp_path / "out", default_policy(SEED), 1, "S_01")
    assert [f.path for f in failed.value.failures] == ["IM2.dcm"]


def test_names_quoted_in_the_reasons_of_files_not_written_are_scrubbed_too():
    # Messages about a file or an archive may quote other names: two inputs that map to one output path, an
    # archive member that is a link. The session's known values (here a PatientID) go out of all of them.
    from dicom_deid.stages.anonymize import name_unwritten_files

    written = FileResult("ABCDEFGH/IM1.dcm", Outcome.WRITTEN, name_pairs={"12345678": ("ABCDEFGH", "PatientID")})
    reason = "both file 12345678/IM1.dcm and member IM1.dcm of 12345678.zip map to this output path"
    clash = FileResult("12345678/IM2.dcm", Outcome.BAD, f"12345678/IM2.dcm: {reason}")
    sources = Sources([], problems=["12345678.zip: member '12345678/notes.pdf' is a link"])
    name_unwritten_files([written, clash], sources)
    assert clash.relpath == "ABCDEFGH/IM2.dcm" and clash.source == "12345678/IM2.dcm"
    assert (
        clash.reason
        == "ABCDEFGH/IM2.dcm: both file ABCDEFGH/IM1.dcm and member IM1.dcm of ABCDEFGH.zip map to this output path"
    )
    assert sources.problems == ["ABCDEFGH.zip: member 'ABCDEFGH/notes.pdf' is a link"]
    assert written.name_pairs is None  # never into the results file
