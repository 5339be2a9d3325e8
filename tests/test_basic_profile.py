"""profile: basic on real packaged DICOMs with a value planted into every Table E.1-1 attribute the file can hold.

Each file goes through the worker's own path (FileDeidentifier.process_file: read, anonymize, write, verify) and
is judged by the same table read independently here: no planted value of an attribute the profile removes or
replaces is left in any byte, the attributes viewers need are present, the 13 keep consistent pseudonyms across
sessions, each option does what the standard's column says, and the output records what was done.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
import pytest
from profile_data import plant_every_attribute, searchable
from pydicom.data import get_testdata_file

from dicom_deid import tags
from dicom_deid.example_tree import identity_for, plant_identity
from dicom_deid.job import SessionError
from dicom_deid.profile_table import load_profile_table
from dicom_deid.records import Outcome, Sources, default_policy
from dicom_deid.stages.anonymize import FileDeidentifier, anonymize_session
from dicom_deid.verify.files import check_file
from helpers import elements
from vendor_data import VENDOR_FILES, deid_data_file

SEED = "0123456789abcdef0123456789abcdef"
S1, S2 = "EPL31_LHS_0001", "EPL31_LHS_0002"
SOURCES = ("MR_small.dcm", "CT_small.dcm", "emri_small.dcm", "MR_small_bigendian.dcm")
ALL_OPTIONS = (
    "retain_safe_private",
    "retain_long_modified_dates",
    "retain_patient_characteristics",
    "retain_device_identity",
    "clean_descriptors",
)
# Type 1 and 2 attributes of the patient, study and image modules: viewers and archives expect them present.
VIEWER_REQUIRED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "Modality",
    "ContentDate",
    "ContentTime",
)


def policy(options=(), **changes):
    private = "safe" if "retain_safe_private" in options else "remove"
    return default_policy(SEED, profile="basic", basic_options=tuple(options), private_tags=private, **changes)


def planted_file(tmp_path: Path, source: str, subject: str = S1, session: str = "01") -> tuple[Path, list]:
    dataset = pydicom.dcmread(get_testdata_file(source))
    plant_identity(dataset, identity_for(subject), session=session, series="t1", instance=1)
    dataset.StudyDescription = f"{dataset.PatientName} {dataset.PatientID}"  # a known value in a descriptor
    planted = plant_every_attribute(dataset)
    path = tmp_path / f"{subject}_{session}_{source}"
    dataset.save_as(path, enforce_file_format=True)
    return path, planted


def deidentify(source: Path, options=(), **changes) -> tuple[Path, object]:
    output = source.with_name("out_" + source.name)
    result = FileDeidentifier(policy(options, **changes)).process_file(source, output, source.name)
    assert result.outcome is Outcome.WRITTEN, result.reason
    assert {name: items for name, items in result.failures.items() if items} == {}
    return output, result


@pytest.mark.parametrize("source", SOURCES)
def test_every_planted_attribute_gets_its_action_and_no_value_is_left(tmp_path, source):
    path, planted = planted_file(tmp_path, source)
    assert len(planted) > 450, "nearly every attribute of the table is planted"
    output, result = deidentify(path)
    data = output.read_bytes()
    left = [p.keyword for p in searchable(planted) if p.text.encode() in data]
    assert left == []
    identity = identity_for(S1).values
    assert [k for k, v in identity.items() if len(v) >= 6 and v.encode() in data] == []
    assert set(result.profile_actions) <= {"X", "Z", "D", "U", "K", "C"} and result.profile_actions["X"] > 350


@pytest.mark.parametrize("source", SOURCES)
def test_attributes_viewers_need_stay_present(tmp_path, source):
    path, _ = planted_file(tmp_path, source)
    output = pydicom.dcmread(deidentify(path)[0])
    assert [keyword for keyword in VIEWER_REQUIRED if keyword not in output] == []
    assert output.PatientName == "" and output.StudyDate == "" and output.PatientSex in ("", None)
    assert output.ContentDate == "19000101"  # Z/D, Type 1 in enhanced images: a dummy


def test_the_13_keep_consistent_pseudonyms_across_sessions_where_the_table_allows_a_dummy(tmp_path):
    first, _ = planted_file(tmp_path, "MR_small.dcm", session="01")
    second, _ = planted_file(tmp_path, "CT_small.dcm", session="02")
    one, two = (pydicom.dcmread(deidentify(path)[0]) for path in (first, second))  # two separate workers
    table, identity = load_profile_table(), identity_for(S1).values
    for keyword in tags.REPLACED:
        action = table.row_for(pydicom.datadict.tag_for_keyword(keyword)).basic
        if action == "X":
            assert keyword not in one and keyword not in two, keyword
        else:
            assert one[keyword].value == two[keyword].value != identity[keyword], keyword
    assert one.PatientID and one.InstitutionName and one.StationName


def test_each_option_does_what_its_column_says(tmp_path):
    path, _ = planted_file(tmp_path, "MR_small.dcm")
    original = pydicom.dcmread(path)
    bare = pydicom.dcmread(deidentify(path)[0])
    full = pydicom.dcmread(deidentify(path, ALL_OPTIONS)[0])
    for keyword in ("PatientAge", "PatientSize", "PatientWeight", "PatientSex", "DeviceSerialNumber"):
        assert full[keyword].value == original[keyword].value, keyword  # K
        assert keyword not in bare or not bare[keyword].value or bare[keyword].value != original[keyword].value
    assert full.StudyDate != original.StudyDate and full.StudyDate and full.StudyTime == original.StudyTime  # C
    assert "SeriesDescription" not in bare and full.SeriesDescription == original.SeriesDescription
    assert full.StudyDescription == f"{full.PatientName} {full.PatientID}"[: len(full.StudyDescription)] or (
        str(original.PatientID) not in full.StudyDescription
    )  # kept, scrubbed of the known values
    assert str(original.PatientID) not in full.StudyDescription
    assert "StudyDescription" not in bare
    assert "Occupation" not in full  # one of the workflow's 4: removed although Clean Descriptors says C


def test_retain_safe_private_keeps_the_safe_list_and_removes_every_other_private_element(tmp_path):
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # GE private groups
    path = tmp_path / "ct.dcm"
    dataset.save_as(path, enforce_file_format=True)
    kept = pydicom.dcmread(deidentify(path, ("retain_safe_private",))[0])
    gone = pydicom.dcmread(deidentify(path)[0])
    assert any(e.tag.is_private for e in elements(kept))
    assert not any(e.tag.is_private for e in elements(gone))


@pytest.mark.parametrize(("options", "temporal"), [((), "REMOVED"), (ALL_OPTIONS, "MODIFIED")])
def test_the_output_records_the_profile_and_each_option(tmp_path, options, temporal):
    path, _ = planted_file(tmp_path, "MR_small.dcm")
    output = pydicom.dcmread(deidentify(path, options)[0])
    codes = [(item.CodeValue, item.CodingSchemeDesignator) for item in output.DeidentificationMethodCodeSequence]
    expected = {"113100"} | ({"113111", "113107", "113108", "113109", "113105"} if options else set())
    assert {code for code, _ in codes} == expected and {scheme for _, scheme in codes} == {"DCM"}
    assert output.PatientIdentityRemoved == "YES"
    methods = output.DeidentificationMethod
    assert (methods if isinstance(methods, str) else methods[0]) == "DICOM PS3.15 2024b Basic Profile"
    assert output.LongitudinalTemporalInformationModified == temporal


def test_minimal_records_that_dates_moved_and_claims_no_profile(tmp_path):
    path, _ = planted_file(tmp_path, "MR_small.dcm")
    output = tmp_path / "minimal.dcm"
    result = FileDeidentifier(default_policy(SEED)).process_file(path, output, "x.dcm")
    written = pydicom.dcmread(output)
    assert written.LongitudinalTemporalInformationModified == "MODIFIED"
    assert "DeidentificationMethodCodeSequence" not in written and result.profile_actions == {}


@pytest.mark.parametrize(
    ("keyword", "tamper", "message"),
    [
        ("PerformingPhysicianName", lambda ds, v: setattr(ds, "PerformingPhysicianName", v), "still present"),
        ("PersonName", lambda ds, v: setattr(ds, "PersonName", ""), "emptied instead of given a dummy value"),
        ("PatientAge", lambda ds, v: setattr(ds, "PatientAge", "099Y"), "changed although kept"),
        ("StudyInstanceUID", lambda ds, v: setattr(ds, "StudyInstanceUID", v), "still holds its original value"),
        ("ContentDate", lambda ds, v: setattr(ds, "ContentDate", v), "still holds its original value"),
        ("PatientSex", lambda ds, v: delattr(ds, "PatientSex"), "removed"),
    ],
)
def test_the_verifier_catches_an_action_not_held(tmp_path, keyword, tamper, message):
    path, _ = planted_file(tmp_path, "MR_small.dcm")
    options = ("retain_patient_characteristics",)
    output, _ = deidentify(path, options)
    written = pydicom.dcmread(output)
    tamper(written, pydicom.dcmread(path)[keyword].value)
    written.save_as(output, enforce_file_format=True)
    failures = check_file(path, output, path.name, policy(options))["profile_held"]
    assert any(keyword in failure and message in failure for failure in failures), failures


@pytest.mark.parametrize("options", [(), ALL_OPTIONS], ids=["no option", "every option"])
def test_an_export_already_anonymized_to_dummy_dates_publishes(tmp_path, options):
    # nibabel's Siemens T1 map as shipped: an earlier anonymizer set every date, the birth date too, to 19000101
    # (the dummy date the profile writes) and names, IDs and private creators to 'Anon'. Rewriting a dummy with
    # the same dummy leaks nothing; the checks must not fail the file for it.
    source = tmp_path / "t1map.dcm"
    source.write_bytes(VENDOR_FILES["siemens_qt1_map"].load())
    assert pydicom.dcmread(source).PatientBirthDate == "19000101"
    output, result = deidentify(source, options)
    if "retain_long_modified_dates" not in options:
        assert pydicom.dcmread(output).SeriesDate == "19000101"  # D: the dummy, which the original already was
    assert result.profile_actions["D"] > 0


def test_a_kept_value_changed_where_the_scrub_would_not_have_changed_it_fails(tmp_path):
    # The scrub replaces a known value under 6 characters (MR_small's PatientID 4MR1) only as a whole word, and so
    # does the byte scan look for it: a kept DeviceSerialNumber SN4MR1 stays as it is. A change there did not
    # come from the scrub: the K check must report it, not excuse it as a scrubbed repeat of 4MR1.
    source = tmp_path / "mr.dcm"
    dataset = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    dataset.DeviceSerialNumber = f"SN{dataset.PatientID}"
    dataset.save_as(source, enforce_file_format=True)
    output, _ = deidentify(source, ("retain_device_identity",))
    written = pydicom.dcmread(output)
    assert written.DeviceSerialNumber == "SN4MR1"
    written.DeviceSerialNumber = "SNXXXX"
    written.save_as(output, enforce_file_format=True)
    failures = check_file(source, output, source.name, policy(("retain_device_identity",)))["profile_held"]
    assert failures == ["mr.dcm: DeviceSerialNumber changed although kept (Table E.1-1: K)"]


def test_a_kept_attribute_that_repeats_a_replaced_value_is_scrubbed_not_failed(tmp_path):
    # deid-data's cat.dcm as shipped: its GantryID (kept under Retain Device Identity) repeats its StationName
    # (always replaced). The scrub gives it StationName's pseudonym; keeping it would leak the station.
    source = tmp_path / "cat.dcm"
    source.write_bytes(deid_data_file("animals/cat.dcm")())
    original = pydicom.dcmread(source)
    assert original.GantryID == original.StationName
    output, result = deidentify(source, ("retain_device_identity",))
    written = pydicom.dcmread(output)
    assert written.GantryID == written.StationName != original.StationName
    assert written.DeviceSerialNumber == original.DeviceSerialNumber  # kept, repeats nothing
    assert result.scrubbed == {"StationName in GantryID": 1}


def test_the_verifier_wants_the_profile_recorded(tmp_path):
    path, _ = planted_file(tmp_path, "MR_small.dcm")
    output, _ = deidentify(path)
    written = pydicom.dcmread(output)
    del written.DeidentificationMethodCodeSequence
    written.save_as(output, enforce_file_format=True)
    assert any("113100" in f for f in check_file(path, output, "x.dcm", policy())["profile_held"])
    assert not any(check_file(path, output, "x.dcm", default_policy(SEED)).get("profile_held"))  # minimal: no


@pytest.mark.parametrize(
    ("source", "change", "why"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", {}, "secondary capture"),
        ("MR_small.dcm", {"BurnedInAnnotation": "YES"}, "BurnedInAnnotation YES"),
        ("MR_small.dcm", {"Modality": "US"}, "ultrasound"),
        ("MR_small.dcm", {"ConversionType": "WSD"}, "screen capture"),
        ("MR_small.dcm", {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.104.1"}, "encapsulated document"),
    ],
)
def test_burned_in_text_is_flagged_and_held_back_under_basic(tmp_path, source, change, why):
    dataset = pydicom.dcmread(get_testdata_file(source))
    for keyword, value in change.items():
        setattr(dataset, keyword, value)
    path = tmp_path / "in.dcm"
    dataset.save_as(path, enforce_file_format=True)
    basic = FileDeidentifier(policy()).process_file(path, tmp_path / "basic.dcm", "in.dcm")
    assert basic.outcome is Outcome.BAD and basic.burned_in == why
    assert (
        basic.reason
        == f"in.dcm: may carry burned-in text ({why}): not published under profile basic without pixel cleaning"
    )
    assert not (tmp_path / "basic.dcm").exists()
    minimal = FileDeidentifier(default_policy(SEED)).process_file(path, tmp_path / "minimal.dcm", "in.dcm")
    assert minimal.outcome is Outcome.WRITTEN and minimal.burned_in == why  # published, and flagged in the report


def test_a_plain_mr_is_not_flagged(tmp_path):
    path, _ = planted_file(tmp_path, "MR_small.dcm")
    assert deidentify(path)[1].burned_in == ""


def test_a_file_held_back_for_its_pixels_is_named_without_its_patients_values(tmp_path, caplog):
    # Its name goes into the reports in the output: cleared as a written file's would be, the input path kept.
    dataset = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    dataset.PatientName, dataset.PatientID = "Stahlberg^Ingrid", "MRN4711829"
    relpath = "Stahlberg_MRN4711829/capture.dcm"
    (tmp_path / "in" / relpath).parent.mkdir(parents=True)
    dataset.save_as(tmp_path / "in" / relpath, enforce_file_format=True)
    held = FileDeidentifier(policy()).process_file(tmp_path / "in" / relpath, tmp_path / "out" / relpath, relpath)
    assert held.outcome is Outcome.BAD and held.burned_in == "secondary capture" and held.source == relpath
    assert held.relpath.endswith("/capture.dcm") and held.reason.startswith(f"{held.relpath}: may carry burned-in")
    for value in ("Stahlberg", "MRN4711829"):
        assert value not in held.relpath and value not in held.reason
    assert "MRN4711829" in held.name_pairs  # for naming its session's other files that were not written
    # The job's log, outside the output, says which input file the cleared name stands for.
    sources = Sources([(relpath, str(tmp_path / "in" / relpath))])
    with caplog.at_level(logging.INFO), pytest.raises(SessionError):
        anonymize_session(sources, tmp_path / "job", policy(), 1, "S_01")
    assert f"{relpath} is named {held.relpath} in the reports" in caplog.text
