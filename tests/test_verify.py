"""The verification catches each kind of leak or loss it is meant to catch."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.sequence import Sequence

from dicom_deid.dicomfile import BadDicom, DicomDir, NotDicom, read_instance
from dicom_deid.example_tree import identity_for, plant_identity
from dicom_deid.job import SessionError
from dicom_deid.records import SKIP_FILE, Check, FileResult, Outcome, Sources, Verdict, default_policy
from dicom_deid.stages.anonymize import FileDeidentifier
from dicom_deid.stages.publish import publish_session
from dicom_deid.verify import CHECKS, FILE_CHECKS
from dicom_deid.verify.files import check_file
from dicom_deid.verify.session import cannot_be_instance, check_session
from helpers import pipe
from vendor_data import VENDOR_FILES, plant

SEED = "0123456789abcdef0123456789abcdef"
IDENTITY = identity_for("EPL31_LHS_0001")


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    """An original with planted identity and its correctly anonymized output."""
    return make_pair(tmp_path, "MR_small.dcm")


def make_pair(tmp_path: Path, packaged_file: str) -> tuple[Path, Path]:
    dataset = pydicom.dcmread(get_testdata_file(packaged_file))
    plant_identity(dataset, IDENTITY, session="01", series="t1", instance=1)
    source = tmp_path / "in" / "IM1.dcm"
    source.parent.mkdir()
    dataset.save_as(source, enforce_file_format=True)
    output = tmp_path / "out" / "IM1.dcm"
    assert FileDeidentifier(default_policy(SEED)).process_file(source, output, "IM1.dcm").outcome == "written"
    return source, output


def no_failures() -> dict[str, list[str]]:
    return {name: [] for name in FILE_CHECKS}


def tamper(output: Path, change) -> None:
    dataset = pydicom.dcmread(output)
    change(dataset)
    dataset.save_as(output, enforce_file_format=True)


def failed(source: Path, output: Path) -> set[str]:
    return {name for name, items in check_file(source, output, "IM1.dcm").items() if items}


def test_correct_output_passes_every_check(pair):
    assert failed(*pair) == set()


def test_identifier_copied_into_a_private_tag_is_found(pair):
    source, output = pair
    tamper(
        output,
        lambda ds: ds.private_block(0x0011, "LEAK", create=True).add_new(0x01, "LO", IDENTITY.values["PatientID"]),
    )
    assert failed(source, output) == {"no_original_values_in_bytes"}


def test_identifier_after_the_pixel_data_is_found(pair):
    # Group 7FE1 sorts after PixelData (7FE0,0010): the scan must cover what follows the pixel values.
    source, output = pair
    tamper(
        output,
        lambda ds: ds.private_block(0x7FE1, "LEAK", create=True).add_new(0x01, "LO", IDENTITY.values["PatientID"]),
    )
    assert failed(source, output) == {"no_original_values_in_bytes"}


def test_identifier_in_a_deflated_file_is_found(tmp_path):
    # The deflated transfer syntax compresses the whole dataset: the scan must look at the inflated bytes.
    source, output = make_pair(tmp_path, "image_dfl.dcm")
    assert failed(source, output) == set()
    tamper(
        output,
        lambda ds: ds.private_block(0x0011, "LEAK", create=True).add_new(0x01, "LO", IDENTITY.values["PatientID"]),
    )
    assert str(pydicom.dcmread(output).file_meta.TransferSyntaxUID) == pydicom.uid.DeflatedExplicitVRLittleEndian
    assert failed(source, output) == {"no_original_values_in_bytes"}
    found = check_file(source, output, "IM1.dcm")["no_original_values_in_bytes"]
    assert found == ["IM1.dcm: the original PatientID is present in (0011,1001)"]  # located in the inflated bytes


def test_a_leftover_is_named_by_the_attribute_it_came_from_and_where_it_lies(tmp_path):
    # pydicom-data's Philips ultrasound keeps its on-screen annotation in private sequences that hold the
    # patient's ID and the institution as character codes (US values: the bytes of UTF-16). Kept with
    # private_tags: keep, the scan finds them and says where, never what; the default removes them.
    source = Path(get_testdata_file("OBXXXX1A.dcm"))
    found = check_after(source, tmp_path, default_policy(SEED, private_tags="keep"))["no_original_values_in_bytes"]
    where = "is present in (200D,110D) item 1 > (200D,1001) item"
    assert sorted(found) == [
        f"US.dcm: the original InstitutionName {where} 3 > (200D,1013)",
        f"US.dcm: the original PatientID {where} 2 > (200D,1013)",
    ]
    assert not any(check_after(source, tmp_path, default_policy(SEED)).values())


def check_after(source: Path, tmp_path: Path, policy) -> dict[str, list[str]]:
    result = FileDeidentifier(policy).process_file(source, tmp_path / "US.dcm", "US.dcm")
    assert result.outcome == "written"
    return result.failures


def test_file_meta_preamble_or_padding_carried_over_from_the_original_is_found(pair):
    source, output = pair
    tamper(output, lambda ds: setattr(ds.file_meta, "SourceApplicationEntityTitle", "SENDING_PACS"))
    assert check_file(source, output, "IM1.dcm")["policy_held"] == [
        "IM1.dcm: file meta keeps SourceApplicationEntityTitle of the original"
    ]
    data = bytearray(output.read_bytes())
    data[:128] = IDENTITY.values["PatientID"].encode().ljust(128, b"\0")  # a writer's text in the preamble
    output.write_bytes(data)
    found = check_file(source, output, "IM1.dcm")
    assert "IM1.dcm: preamble is not zeros" in found["policy_held"]
    assert found["no_original_values_in_bytes"] == ["IM1.dcm: the original PatientID is present in the preamble"]
    tamper(output, lambda ds: ds.add_new(0xFFFCFFFC, "OB", b"\0\0"))
    assert "IM1.dcm: trailing padding kept" in check_file(source, output, "IM1.dcm")["policy_held"]


def test_original_study_uid_left_in_a_reference_is_found(pair):
    source, output = pair
    original_uid = pydicom.dcmread(source).StudyInstanceUID

    def refer(ds):
        item = Dataset()
        item.ReferencedSOPInstanceUID = original_uid
        ds.ReferencedStudySequence = Sequence([item])

    tamper(output, refer)
    assert failed(source, output) == {"no_original_values_in_bytes"}


def test_removed_tag_back_at_depth_two_is_found(pair):
    source, output = pair
    tamper(output, lambda ds: setattr(ds.ReferencedPatientSequence[0].OtherPatientIDsSequence[0], "Occupation", "X"))
    assert "removed_tags_absent" in failed(source, output)


def test_replaced_tag_with_original_value_is_found(pair):
    source, output = pair
    tamper(output, lambda ds: setattr(ds, "StationName", IDENTITY.values["StationName"]))
    assert "replaced_tags_changed" in failed(source, output)


def test_replaced_tag_deleted_is_found(pair):
    source, output = pair
    tamper(output, lambda ds: delattr(ds, "StudyID"))
    assert failed(source, output) == {"replaced_tags_changed"}


def test_changed_pixels_are_found(pair):
    source, output = pair
    tamper(output, lambda ds: setattr(ds, "PixelData", bytes(len(ds.PixelData))))
    assert failed(source, output) == {"pixel_data_unchanged"}


def make_large_pair(tmp_path: Path, encapsulated: bool) -> tuple[Path, Path]:
    """As make_pair, with pixel data above the size the check compares in place rather than reads out (1 MB):
    native frames of MR_small, or JPEG 2000 frames of emri_small, encapsulated (undefined length)."""
    name = "emri_small_jpeg_2k_lossless.dcm" if encapsulated else "MR_small.dcm"
    dataset = pydicom.dcmread(get_testdata_file(name))
    if encapsulated:
        frames = list(generate_frames(dataset.PixelData, number_of_frames=dataset.NumberOfFrames))
        dataset.PixelData = encapsulate(frames * 80)
        dataset["PixelData"].is_undefined_length = True
        dataset.NumberOfFrames = len(frames) * 80
    else:
        dataset.PixelData = dataset.PixelData * 256
        dataset.NumberOfFrames = 256
    assert len(dataset.PixelData) > 2**20
    plant_identity(dataset, IDENTITY, session="01", series="t1", instance=1)
    source = tmp_path / "in" / "IM1.dcm"
    source.parent.mkdir(parents=True)
    dataset.save_as(source, enforce_file_format=True)
    output = tmp_path / "out" / "IM1.dcm"
    assert FileDeidentifier(default_policy(SEED)).process_file(source, output, "IM1.dcm").outcome == "written"
    return source, output


@pytest.mark.parametrize("encapsulated", [False, True], ids=["native", "encapsulated"])
def test_large_pixel_data_is_compared_in_place_and_what_follows_it_is_scanned(tmp_path, encapsulated):
    source, output = make_large_pair(tmp_path, encapsulated)
    assert failed(source, output) == set()

    def flip_last_pixel_byte(ds):
        pixels = bytearray(ds.PixelData)
        pixels[-20] ^= 0xFF  # the last frame: the end of the value must be found, not assumed
        ds.PixelData = bytes(pixels)

    tamper(output, flip_last_pixel_byte)
    assert failed(source, output) == {"pixel_data_unchanged"}
    source, output = make_large_pair(tmp_path / "leak", encapsulated)
    leak = IDENTITY.values["PatientID"]
    tamper(output, lambda ds: ds.private_block(0x7FE1, "LEAK", create=True).add_new(0x01, "LO", leak))
    assert failed(source, output) == {"no_original_values_in_bytes"}


def test_changed_transfer_syntax_is_found(pair):
    source, output = pair
    tamper(output, lambda ds: ds.file_meta.__setattr__("TransferSyntaxUID", pydicom.uid.ImplicitVRLittleEndian))
    assert "transfer_syntax_unchanged" in failed(source, output)


def test_unreadable_output_is_found(pair):
    source, output = pair
    output.write_bytes(b"garbage")
    assert failed(source, output) == {"readable"}


def test_session_level_counts_missing_and_extra_files(pair, tmp_path):
    source, output = pair
    staged = Sources([("IM1.dcm", str(source)), ("IM2.dcm", str(source))])
    results = [FileResult("IM1.dcm", Outcome.WRITTEN, failures=no_failures())]
    (output.parent / "stray.dcm").write_bytes(output.read_bytes())
    checks = check_session(staged, results, output.parent)
    assert list(checks) == list(CHECKS)
    failures = checks["every_instance_once"].failures
    assert "IM2.dcm: input file has no outcome" in failures
    assert "stray.dcm: output file that no input instance accounts for" in failures


def test_dicom_instance_wrongly_skipped_is_found(pair):
    source, output = pair
    staged = Sources([("IM1.dcm", str(source))])
    results = [FileResult("IM1.dcm", Outcome.SKIPPED, "IM1.dcm: not DICOM")]
    output.unlink()
    checks = check_session(staged, results, output.parent)
    assert checks["every_instance_once"].failures == ["IM1.dcm: a DICOM instance was left out"]


def test_written_file_without_its_checks_is_found(pair):
    source, output = pair
    staged = Sources([("IM1.dcm", str(source))])
    results = [FileResult("IM1.dcm", Outcome.WRITTEN)]
    checks = check_session(staged, results, output.parent)
    assert checks["every_instance_once"].failures == ["IM1.dcm: was not checked"]


def test_per_file_failures_fail_the_session(pair):
    source, output = pair
    staged = Sources([("IM1.dcm", str(source))])
    failures = {**no_failures(), "pixel_data_unchanged": ["IM1.dcm: pixel data changed"]}
    results = [FileResult("IM1.dcm", Outcome.WRITTEN, failures=failures)]
    checks = check_session(staged, results, output.parent)
    assert checks["pixel_data_unchanged"] == Check(Verdict.FAIL, ["IM1.dcm: pixel data changed"])
    assert all(check.result is Verdict.PASS for name, check in checks.items() if name != "pixel_data_unchanged")


def test_failure_messages_quote_no_value(pair):
    source, output = pair
    tamper(output, lambda ds: setattr(ds, "StationName", IDENTITY.values["StationName"]))
    messages = " ".join(item for items in check_file(source, output, "IM1.dcm").values() for item in items)
    assert messages and not any(value in messages for value in IDENTITY.values.values() if len(value) > 1)


def _publish(source: Path, output: Path, tmp_path: Path, results: list[FileResult], on_bad_file: str, suffix=""):
    staged = Sources([("IM1.dcm", str(source)), ("IM2.dcm", str(source))])
    final, report = tmp_path / "published" / f"S_1_01{suffix}", tmp_path / "reports" / "S_1_01.json"
    files_dir = output.parent
    return final, report, lambda: publish_session(staged, results, files_dir, final, report, "S_1_01", {}, on_bad_file)


def test_skip_file_leaves_out_a_failing_file_and_publishes_the_rest(pair, tmp_path):
    source, output = pair
    (output.parent / "IM2.dcm").write_bytes(output.read_bytes())
    leaking = {**no_failures(), "no_original_values_in_bytes": ["IM2.dcm: an original identifying value is present"]}
    results = [FileResult("IM1.dcm", Outcome.WRITTEN, failures=no_failures()),
               FileResult("IM2.dcm", Outcome.WRITTEN, failures=leaking)]  # fmt: skip
    final, _, publish = _publish(source, output, tmp_path, results, SKIP_FILE)
    report = publish()
    assert sorted(p.name for p in final.iterdir()) == ["IM1.dcm"]  # the failing file never reaches the output
    assert report.state == "published_in_part" and report.counts.instances_written == 1
    assert [(f.path, f.reason) for f in report.files_left_out] == [
        ("IM2.dcm", "failed verification: no_original_values_in_bytes")
    ]
    assert report.checks["every_instance_once"].result is Verdict.PASS  # the left-out file is accounted for


@pytest.mark.parametrize("layout", ["folder", "zip"])
@pytest.mark.parametrize("on_bad_file", ["fail_session", SKIP_FILE])
def test_a_publish_killed_after_it_put_the_session_in_place_runs_again(pair, tmp_path, layout, on_bad_file):
    # kill -9 after the rename but before the report: Snakemake deletes the incomplete outputs and runs publish
    # again on the same scratch. Publish once emptied that scratch as it went, so every rerun failed with each
    # instance "missing from the output" until someone deleted work_dir by hand.
    source, output = pair
    (output.parent / "IM2.dcm").write_bytes(output.read_bytes())
    second = no_failures() if on_bad_file != SKIP_FILE else {"no_original_values_in_bytes": ["IM2.dcm: a value"]}
    results = [FileResult("IM1.dcm", Outcome.WRITTEN, failures=no_failures()),
               FileResult("IM2.dcm", Outcome.WRITTEN, failures={**no_failures(), **second})]  # fmt: skip
    suffix = ".zip" if layout == "zip" else ""
    final, report, publish = _publish(source, output, tmp_path, results, on_bad_file, suffix)
    publish()
    first = final.read_bytes() if layout == "zip" else {p.name: p.read_bytes() for p in final.iterdir()}
    assert (output.parent / "IM1.dcm").is_file()  # scratch is left whole: Snakemake removes it (temp())
    (shutil.rmtree if layout == "folder" else Path.unlink)(final)
    report.unlink()
    publish()
    assert (final.read_bytes() if layout == "zip" else {p.name: p.read_bytes() for p in final.iterdir()}) == first
    assert report.is_file()


def test_two_names_a_zip_would_show_alike_fail_the_session_by_name(pair, tmp_path):
    # caf\xe9.dcm (Latin-1) beside caf%E9.dcm: the zip writes both as caf%E9.dcm. It failed as an "unexpected
    # error" with a traceback; the session's error now names the member.
    source, output = pair
    names, files_dir = ["caf%E9.dcm", os.fsdecode(b"caf\xe9.dcm")], tmp_path / "files"
    files_dir.mkdir()
    for name in names:
        (files_dir / name).write_bytes(output.read_bytes())
    results = [FileResult(name, Outcome.WRITTEN, failures=no_failures()) for name in names]
    staged = Sources([(name, str(source)) for name in names])
    final = tmp_path / "published" / "S_1_01.zip"
    with pytest.raises(SessionError) as failed:
        publish_session(staged, results, files_dir, final, tmp_path / "r.json", "S_1_01", {})
    assert [(f.path, f.reason.split(" (")[0]) for f in failed.value.failures] == [
        ("caf%E9.dcm", "another file's name is shown alike in the zip")
    ]
    assert not final.exists()


def test_skip_file_still_fails_a_session_with_no_good_file(pair, tmp_path):
    source, output = pair
    leaking = {**no_failures(), "no_original_values_in_bytes": ["IM1.dcm: an original identifying value is present"]}
    results = [FileResult("IM1.dcm", Outcome.WRITTEN, failures=leaking),
               FileResult("IM2.dcm", Outcome.BAD, "IM2.dcm: pixel data is truncated")]  # fmt: skip
    final, report, publish = _publish(source, output, tmp_path, results, SKIP_FILE)
    with pytest.raises(SessionError) as error:
        publish()
    assert {(f.path, f.reason) for f in error.value.failures} == {
        ("IM1.dcm", "failed verification: no_original_values_in_bytes"),
        ("IM2.dcm", "pixel data is truncated"),
    }
    assert not final.exists() and not report.exists()


def test_fail_session_publishes_nothing_when_one_file_fails(pair, tmp_path):
    source, output = pair
    (output.parent / "IM2.dcm").write_bytes(output.read_bytes())
    leaking = {**no_failures(), "no_original_values_in_bytes": ["IM2.dcm: an original identifying value is present"]}
    results = [FileResult("IM1.dcm", Outcome.WRITTEN, failures=no_failures()),
               FileResult("IM2.dcm", Outcome.WRITTEN, failures=leaking)]  # fmt: skip
    final, report, publish = _publish(source, output, tmp_path, results, "fail_session")
    with pytest.raises(SessionError) as error:
        publish()
    assert [(f.check, f.path) for f in error.value.failures] == [("no_original_values_in_bytes", "IM2.dcm")]
    assert not final.exists() and not report.exists()


def test_bytes_alone_never_rule_out_a_file_read_as_an_instance(tmp_path):
    # cannot_be_instance spares the publish job pydicom for text files; it must never say so of a file that
    # read_instance accepts, with or without its 128-byte preamble and DICM header, in either byte order.
    accepted = 0
    for number, source in enumerate(get_testdata_files("*.dcm")):
        whole = Path(source).read_bytes()
        for variant, data in (("whole", whole), ("bare", whole[132:] if whole[128:132] == b"DICM" else whole)):
            path = tmp_path / f"{number}-{variant}"
            path.write_bytes(data)
            try:
                read_instance(path, path.name)
            except (NotDicom, BadDicom, DicomDir):
                continue
            accepted += 1
            assert not cannot_be_instance(path), source
    assert accepted > 100
    text = tmp_path / "notes.txt"
    text.write_text("Scan notes: nothing to report.\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert cannot_be_instance(text) and cannot_be_instance(empty)
    with pytest.raises(NotDicom):
        read_instance(text, "notes.txt")
    # What is no regular file is never opened: a pipe would wait for ever, a folder link that loops cannot be read.
    (tmp_path / "loop").symlink_to(".")
    with pipe(tmp_path / "pipe") as fifo:
        assert cannot_be_instance(fifo) and cannot_be_instance(tmp_path / "loop")


def test_an_original_name_part_inside_a_copy_of_its_pseudonym_is_not_a_leftover(tmp_path):
    # Found by CI: with this key dicognito draws the fake given name JULIUS for a referring physician whose
    # given name is JULIUS. The scrub writes the whole pseudonym into the description that named him; the scan
    # found JULIUS there and failed the session, on every rerun with the key. In the pseudonym's own element it
    # was already no leftover. The same name part standing anywhere else still is.
    source = tmp_path / "toshiba.dcm"
    source.write_bytes(plant(VENDOR_FILES["toshiba_mr_small"].load(), identity_for("VENDOR_0004")))
    original = str(pydicom.dcmread(source).ReferringPhysicianName)
    output = tmp_path / "out.dcm"
    result = FileDeidentifier(default_policy("31287c181ddb5dac3043c1cc26a7e198")).process_file(source, output, "t.dcm")
    written = pydicom.dcmread(output)
    pseudonym = str(written.ReferringPhysicianName)
    assert pseudonym != original and pseudonym.split("^")[1] == original.split("^")[1] == "JULIUS"
    assert written.PerformedProcedureStepDescription == f"Investigators^{pseudonym}"
    assert result.outcome == "written" and not any(result.failures.values()), result.failures

    tamper(output, lambda ds: setattr(ds, "ImageComments", "seen by Dr JULIUS"))
    assert check_file(source, output, "t.dcm")["no_original_values_in_bytes"] == [
        "t.dcm: the original ReferringPhysicianName is present in ImageComments"
    ]
    tamper(output, lambda ds: setattr(ds, "ImageComments", f"seen by {original}"))
    assert (
        "t.dcm: the original ReferringPhysicianName is present in ImageComments"
        in check_file(source, output, "t.dcm")["no_original_values_in_bytes"]
    )


def test_a_pseudonym_copied_into_free_text_publishes_when_it_extends_an_original_name_part(tmp_path):
    # Found by a sweep of random keys: this one gives the GE CT's patient ROSALIND the fake given name ROSALINDA.
    # The scrub must not scrub the pseudonym it copied into the description again (ROSALINDAA); the scan must not
    # take ROSALIND inside that copy for a leftover.
    source = tmp_path / "ge.dcm"
    source.write_bytes(plant(VENDOR_FILES["ge_ct_small"].load(), identity_for("VENDOR_0003")))
    output = tmp_path / "out.dcm"
    result = FileDeidentifier(default_policy("8ba93bcc0c95906224390e97f43034b0")).process_file(source, output, "ge.dcm")
    written = pydicom.dcmread(output)
    original_given = pydicom.dcmread(source).PatientName.given_name
    assert written.PatientName.given_name == f"{original_given}A"
    assert written.StudyDescription == f"{written.PatientName} {written.PatientID}"
    assert result.outcome == "written" and not any(result.failures.values()), result.failures


def test_two_inputs_renamed_onto_one_output_path_fail_the_session(pair):
    # Names are de-identified (scrub_path): should two input files ever be given the same output path, one would
    # silently replace the other.
    source, output = pair
    staged = Sources([("a/IM1.dcm", str(source)), ("b/IM1.dcm", str(source))])
    results = [
        FileResult(output.name, Outcome.WRITTEN, failures=no_failures(), source_relpath=f"{folder}/IM1.dcm")
        for folder in "ab"
    ]
    checks = check_session(staged, results, output.parent)
    assert checks["every_instance_once"].failures == [
        f"{output.name}: more than one input file would be published here"
    ]
