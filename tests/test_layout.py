"""Discovery of subjects and sessions, and the paths built from them."""

from __future__ import annotations

import os

import pytest

from dicom_deid.archives import archive_destination, archive_stem
from dicom_deid.discovery import (
    NOT_UTF8,
    discover,
    gone_sessions,
    published_but_gone,
    published_reports,
    session_fingerprint,
    walk_files,
)
from dicom_deid.paths import Paths


def make(root, *files):
    for relpath in files:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("a.tar", "a"),
        ("a.TAR.GZ", "a"),
        ("a.tgz", "a"),
        ("a.tar.bz2", "a"),
        ("a.tar.xz", "a"),
        ("a.TXZ", "a"),
        ("a.tbz2", "a"),
        ("a.TBZ", "a"),
        ("scan.v2.ZIP", "scan.v2"),
        ("a.7z", None),
        ("a.gz", None),
        ("IM0001", None),
        (".zip", None),
    ],
)
def test_archive_stem(name, stem):
    assert archive_stem(name) == stem


def test_archive_members_land_beside_the_archive_in_a_folder_named_after_it():
    assert archive_destination("dwi_scan/dwi_scan.tar.gz") == "dwi_scan/dwi_scan"
    assert archive_destination("EXPORT.ZIP") == "EXPORT"


def test_sessions_found_with_subject_and_ses(tmp_path):
    make(tmp_path, "S_1/imaging/S_1_01/a/IM1", "S_1/imaging/S_1_02/IM1", "T/imaging/T_BL/x.zip")
    found = discover(tmp_path)
    assert [(s.subject, s.ses, s.file_count) for s in found.sessions] == [
        ("S_1", "01", 1),
        ("S_1", "02", 1),
        ("T", "BL", 1),
    ]
    assert found.errors == found.warnings == []


def test_misnamed_session_and_missing_subject_are_errors(tmp_path):
    make(tmp_path, "S_1/imaging/S_2_01/IM1", "S_1/imaging/S_1_/IM1", "S_1/imaging/S_1_01/IM1")
    found = discover(tmp_path, ["S_1", "S_9"])
    assert [s.name for s in found.sessions] == ["S_1_01"]
    assert len(found.errors) == 3
    assert any("S_2_01" in e for e in found.errors) and any("S_1_:" in e for e in found.errors)
    assert any("S_9 is listed in 'subjects'" in e for e in found.errors)


def test_subject_and_session_folders_named_in_another_code_page_are_errors(tmp_path):
    # Snakemake cannot write a file name that is not UTF-8 text: such a folder stopped planning with a traceback.
    make(tmp_path, "S_1/imaging/S_1_01/IM1")
    os.makedirs(tmp_path / os.fsdecode(b"S_1/imaging/S_1_\xe9t\xe9"))
    (tmp_path / os.fsdecode(b"S_1/imaging/S_1_\xe9t\xe9/IM1")).write_bytes(b"x")
    os.makedirs(tmp_path / os.fsdecode(b"M\xfcller/imaging/M\xfcller_01"))
    found = discover(tmp_path)
    assert [s.name for s in found.sessions] == ["S_1_01"]
    assert sorted(found.errors) == [
        f"{tmp_path}/M%FCller: subject {NOT_UTF8}",
        f"{tmp_path}/S_1/imaging/S_1_%E9t%E9: session {NOT_UTF8}",
    ]
    assert all(error.encode("utf-8") for error in found.errors)  # printable: no lone surrogate in them


def test_left_behind_things_are_warnings(tmp_path):
    make(tmp_path, "S/imaging/loose.dcm", "S/imaging/S_01/IM1", "U/notes.txt")
    (tmp_path / "S" / "imaging" / "S_02").mkdir()
    found = discover(tmp_path)
    assert [s.name for s in found.sessions] == ["S_01"]
    assert len(found.warnings) == 3 and not found.errors


def test_missing_input_dir_is_an_error(tmp_path):
    assert "no such folder" in discover(tmp_path / "nope").errors[0]


def test_subject_named_like_the_reports_folder_is_an_error(tmp_path):
    make(tmp_path, "reports/imaging/reports_01/IM1")
    assert "reports" in discover(tmp_path).errors[0]


def test_fingerprint_changes_when_a_nested_file_is_added_or_rewritten(tmp_path):
    make(tmp_path, "a/b/IM1")
    first = session_fingerprint(tmp_path)
    make(tmp_path, "a/b/c/IM2")
    second = session_fingerprint(tmp_path)
    assert second[0] != first[0] and second[1] == 2
    os.utime(tmp_path / "a/b/c/IM2", ns=(1, 1))
    assert session_fingerprint(tmp_path)[0] != second[0]


def test_a_session_needs_the_unpack_stage_only_when_an_archive_is_below_it(tmp_path):
    make(tmp_path, "a/IM1")
    make(tmp_path, "a/notes.gz")  # gzip alone is no archive the workflow unpacks
    assert session_fingerprint(tmp_path)[3] is False
    make(tmp_path, "a/b/export.TAR.GZ")
    assert session_fingerprint(tmp_path)[3] is True


def test_the_largest_file_of_a_session_is_known_at_discovery_archives_aside(tmp_path):
    make(tmp_path, "a/IM1")
    (tmp_path / "a" / "IM2").write_bytes(bytes(5000))
    (tmp_path / "a" / "export.zip").write_bytes(bytes(9000))  # its members' sizes are known only once unpacked
    assert session_fingerprint(tmp_path)[4] == 5000


def test_links_are_followed_into_folders_once_and_a_loop_is_yielded_not_walked(tmp_path):
    # A session put together from links into a central store: what they point to counts, and changes to it too.
    store, session = tmp_path / "store", tmp_path / "session"
    make(store, "series1/IM1")
    make(session, "a/IM2")
    (session / "series1").symlink_to(store / "series1")
    (session / "IM3").symlink_to(store / "series1" / "IM1")
    (session / "a" / "up").symlink_to("..")  # a loop: walking it would never end
    assert sorted(path for path, _ in walk_files(session)) == ["IM3", "a/IM2", "a/up", "series1/IM1"]
    before = session_fingerprint(session)
    (store / "series1" / "IM1").write_bytes(b"rewritten in the store")
    assert session_fingerprint(session)[0] != before[0]


def test_a_published_session_gone_from_the_input_is_named_whichever_subjects_are_run(tmp_path):
    paths = Paths(str(tmp_path / "in"), str(tmp_path / "out"), "work", "logs", data2bids=True)
    make(tmp_path, "in/S/imaging/S_01/IM1", "out/reports/S/S_01.json", "out/reports/S/S_02.json")
    make(tmp_path, "in/U/imaging/U_01/IM1", "out/reports/U/U_01.json", "out/reports/T/T_01.json")
    gone = published_but_gone(paths, gone_sessions(published_reports(paths), discover(paths.input_dir)))
    assert [line.split(":")[0] for line in gone] == [
        f"{tmp_path}/out/imaging/S/S_SE02_MRI.zip",
        f"{tmp_path}/out/imaging/T/T_SE01_MRI.zip",
    ]
    # A run of subject S alone still finds U_01 in the input, and still misses T_01.
    only_s = discover(paths.input_dir, ["S"])
    assert only_s.not_selected == [("U", "01")] and [s.name for s in only_s.sessions] == ["S_01"]
    assert published_but_gone(paths, gone_sessions(published_reports(paths), only_s)) == gone
