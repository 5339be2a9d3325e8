"""Per-subject date shift (config `date_shift`), on real packaged DICOMs with planted identities.

Each subject's offset comes from the key and its original PatientID: the same in every worker, job and rerun,
different between subjects, whole days so that every interval inside a subject holds (times of day, and dates
and times that cross midnight, included). `global` is dicognito's single offset for everybody.
"""

from __future__ import annotations

import csv
import datetime
from copy import deepcopy

import pydicom
import pytest
from dicognito.anonymizer import Anonymizer
from pydicom.data import get_testdata_file

from dicom_deid.dicognito_adapter import MAX_OFFSET_DAYS, MIN_OFFSET_DAYS, date_offset_days
from dicom_deid.example_tree import identity_for, plant_identity
from dicom_deid.records import Sources, default_policy
from dicom_deid.stages.anonymize import FileDeidentifier, anonymize_session

SEED = "0123456789abcdef0123456789abcdef"
S1, S2 = "EPL31_LHS_0001", "EPL31_LHS_0002"


def planted(subject: str, source: str = "MR_small.dcm", session: str = "01") -> pydicom.Dataset:
    dataset = pydicom.dcmread(get_testdata_file(source))
    plant_identity(dataset, identity_for(subject), session=session, series="t1", instance=1)
    # A scan that starts before midnight and is acquired after it: the hard case for an interval.
    dataset.StudyDate, dataset.StudyTime = "20200115", "233000"
    dataset.SeriesDate, dataset.SeriesTime = "20200115", "234500.250"
    dataset.AcquisitionDateTime = "20200116003000.5"
    dataset.ContentDate = "20200116"  # a date without its time
    dataset.AcquisitionTime = "003000"  # a time without its date
    return dataset


def _date(value: str) -> datetime.date:
    return datetime.datetime.strptime(value, "%Y%m%d").date()


def _moment(date: str, time: str = "") -> datetime.datetime:
    return datetime.datetime.strptime((date + time.split(".")[0])[:14].ljust(14, "0"), "%Y%m%d%H%M%S")


def shift_days(before: pydicom.Dataset, after: pydicom.Dataset) -> int:
    return (_date(after.StudyDate) - _date(before.StudyDate)).days


def deidentified(dataset: pydicom.Dataset, **policy) -> pydicom.Dataset:
    copy = deepcopy(dataset)
    FileDeidentifier(default_policy(SEED, **policy)).anonymize(copy)
    return copy


def test_default_is_per_subject():
    assert default_policy(SEED).date_shift == "per_subject"


def test_one_subject_has_one_offset_across_sessions_and_separately_built_deidentifiers():
    first = planted(S1, "MR_small.dcm", session="01")
    second = planted(S1, "CT_small.dcm", session="02")
    second.StudyDate = "20210301"  # a later visit
    # Two FileDeidentifiers stand for two worker processes, or two jobs weeks apart.
    shifts = {shift_days(first, deidentified(first)), shift_days(second, deidentified(second))}
    assert shifts == {date_offset_days(SEED, identity_for(S1).values["PatientID"])}
    assert -MAX_OFFSET_DAYS < shifts.pop() <= -MIN_OFFSET_DAYS


def test_two_subjects_get_different_offsets():
    one, two = planted(S1), planted(S2)
    assert shift_days(one, deidentified(one)) != shift_days(two, deidentified(two))


def test_offsets_spread_over_dicognitos_range_and_depend_on_the_key():
    offsets = [date_offset_days(SEED, f"MRN{n:05d}") for n in range(400)]
    assert min(offsets) >= -MAX_OFFSET_DAYS + 1 and max(offsets) <= -MIN_OFFSET_DAYS
    assert len(set(offsets)) > 200
    assert date_offset_days("another key 0123456789abcdef0123", "MRN00001") != date_offset_days(SEED, "MRN00001")
    assert date_offset_days(SEED, "") == date_offset_days(SEED, "")  # an empty PatientID: one constant offset


@pytest.mark.parametrize("date_shift", ["per_subject", "global"])
def test_intervals_inside_a_subject_are_kept_across_midnight(date_shift):
    before = planted(S1)
    after = deidentified(before, date_shift=date_shift)
    start, start_new = _moment(before.StudyDate, before.StudyTime), _moment(after.StudyDate, after.StudyTime)
    series, series_new = _moment(before.SeriesDate, before.SeriesTime), _moment(after.SeriesDate, after.SeriesTime)
    acquired, acquired_new = _moment(before.AcquisitionDateTime[:14]), _moment(after.AcquisitionDateTime[:14])
    assert after.StudyDate != before.StudyDate
    assert acquired_new - start_new == acquired - start == datetime.timedelta(hours=1)
    assert series_new - start_new == series - start
    assert after.SeriesTime.endswith(".250") and after.AcquisitionDateTime.endswith(".5")  # fractions kept
    if date_shift == "per_subject":  # whole days: a lone date or a lone time keeps its place too
        assert (_date(after.ContentDate) - _date(before.ContentDate)).days == shift_days(before, after)
        assert after.StudyTime == before.StudyTime and after.AcquisitionTime == before.AcquisitionTime


def test_global_reproduces_dicognitos_single_offset():
    one, two = planted(S1), planted(S2)
    reference = deepcopy(one)
    Anonymizer(seed=SEED).anonymize(reference)
    out_one, out_two = deidentified(one, date_shift="global"), deidentified(two, date_shift="global")
    for keyword in ("StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDateTime", "ContentDate"):
        assert out_one[keyword].value == reference[keyword].value, keyword
    assert (out_one.StudyDate, out_one.StudyTime) == (out_two.StudyDate, out_two.StudyTime)


def test_crosswalk_records_each_subjects_offset_and_results_never_hold_it(tmp_path):
    files = []
    for subject in (S1, S2):
        path = tmp_path / "in" / f"{subject}.dcm"
        path.parent.mkdir(exist_ok=True)
        planted(subject).save_as(path, enforce_file_format=True)
        files.append((f"{subject}.dcm", str(path)))
    crosswalk = tmp_path / "private" / "crosswalk.tsv"
    results = anonymize_session(Sources(files), tmp_path / "out", default_policy(SEED), 1, "X_01", crosswalk)
    assert all(r.crosswalk is None for r in results)
    with open(crosswalk) as handle:
        rows = {row["original_patient_id"]: row for row in csv.DictReader(handle, delimiter="\t")}
    for subject in (S1, S2):
        patient_id = identity_for(subject).values["PatientID"]
        before = pydicom.dcmread(tmp_path / "in" / f"{subject}.dcm")
        after = pydicom.dcmread(tmp_path / "out" / f"{subject}.dcm")
        assert int(rows[patient_id]["date_offset_days"]) == shift_days(before, after)
        assert rows[patient_id]["pseudonymous_patient_id"] == after.PatientID


def test_a_crosswalk_of_the_older_format_is_refused_not_mixed(tmp_path):
    from dicom_deid.crosswalk import append_rows

    crosswalk = tmp_path / "crosswalk.tsv"
    old_header = (
        "session",
        "original_patient_id",
        "pseudonymous_patient_id",
        "original_study_uid",
        "pseudonymous_study_uid",
    )
    crosswalk.write_text("\t".join(old_header) + "\n")
    with pytest.raises(ValueError, match="another format"):
        append_rows(crosswalk, "X_01", {("a", "b", "c", "d", "-100")})
