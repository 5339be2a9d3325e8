"""unpack_archive on real archives of real DICOM bytes: every kind unpacks, hostile or broken ones are refused.

Every refusal must name the archive's label, write nothing outside `dest` and leave the archive as it was.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import stat
import tarfile
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicom_deid.archives import ArchiveError, Limits, unpack_archive
from dicom_deid.stages.unpack import list_sources
from helpers import DEFAULT_CONFIG, zip_with_raw_names

DEFAULT_LIMITS = Limits.from_config(DEFAULT_CONFIG["archives"])

MR = Path(get_testdata_file("MR_small.dcm")).read_bytes()
CT = Path(get_testdata_file("CT_small.dcm")).read_bytes()
FILES = [("series1/IM1.dcm", MR), ("series1/IM2.dcm", CT), ("series2/sub/IM3.dcm", MR)]


def _noise(size: int) -> bytes:
    # Incompressible, and the same on every run.
    return random.Random(size).randbytes(size)


def _tar_mode(name: str) -> str:
    lower = name.lower()
    if lower.endswith((".tgz", ".tar.gz")):
        return "w:gz"
    if lower.endswith((".tar.bz2", ".tbz2", ".tbz", ".tb2")):
        return "w:bz2"
    if lower.endswith((".txz", ".tar.xz")):
        return "w:xz"
    return "w"


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def make_tar(path: Path, entries: list) -> Path:
    """Entries: (name, bytes) for a regular file, or (TarInfo, fileobj) from _member/_special."""
    with tarfile.open(path, _tar_mode(path.name)) as tar:
        for entry in entries:
            if isinstance(entry[0], tarfile.TarInfo):
                tar.addfile(*entry)
            else:
                tar.addfile(*_member(*entry))
    return path


def make_zip(path: Path, entries: list) -> Path:
    """Entries: (name or ZipInfo, bytes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests need
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return path


def make_archive(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    return make_zip(path, entries) if path.name.lower().endswith(".zip") else make_tar(path, entries)


def snapshot(top: Path, dest: Path) -> dict[str, str]:
    """Every path below `top` outside `dest`, with its kind and content hash (links are not followed)."""
    found = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(folder, name)
            if path == dest or dest in path.parents:
                continue
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                found[path.relative_to(top).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[path.relative_to(top).as_posix()] = stat.filemode(mode)
    return found


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    # Two levels down, so that '..' members would land inside tmp_path, where the snapshot sees them.
    (tmp_path / "unpacked").mkdir()
    return tmp_path / "unpacked" / "session"


def refuse(tmp_path: Path, dest: Path, archive: Path, reason: str, limits: Limits | None = None) -> ArchiveError:
    """Assert the refusal and that nothing outside `dest` changed (the archive itself included)."""
    label = f"scans/{archive.name}"  # a label distinct from the file name: messages must use the label
    before = snapshot(tmp_path, dest)
    assert archive.name in " ".join(before)  # the archive's hash is part of what must not change
    with pytest.raises(ArchiveError) as caught:
        unpack_archive(archive, label, dest, limits or DEFAULT_LIMITS)
    message = str(caught.value)
    assert message.startswith(f"{label}"), message
    assert reason in message, message
    assert str(dest) not in message  # labels are relative; reports must not carry local paths
    assert snapshot(tmp_path, dest) == before
    return caught.value


# --- every kind unpacks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["s.tar", "s.tgz", "s.tar.gz", "s.tar.bz2", "s.tbz2", "s.tbz", "s.tb2", "s.tar.xz", "s.txz", "s.zip", "S.TAR.GZ",
     "S.ZIP"],
)  # fmt: skip
def test_every_kind_unpacks_with_folders_kept(tmp_path: Path, dest: Path, name: str) -> None:
    archive = make_archive(tmp_path / name, FILES)
    before = snapshot(tmp_path, dest)

    members = unpack_archive(archive, name, dest, DEFAULT_LIMITS)

    assert sorted(members) == sorted(n for n, _ in FILES)
    assert files_in(dest) == sorted(n for n, _ in FILES)
    for member, data in FILES:
        assert (dest / member).read_bytes() == data
        assert pydicom.dcmread(dest / member).SOPInstanceUID
    assert snapshot(tmp_path, dest) == before


def test_tar_of_a_folder_with_its_dot_root_unpacks(tmp_path: Path, dest: Path) -> None:
    # `tar -C folder -czf x.tgz .` writes a "./" member for the folder itself; that is no escape.
    source = tmp_path / "source"
    for member, data in FILES:
        (source / member).parent.mkdir(parents=True, exist_ok=True)
        (source / member).write_bytes(data)
    archive = tmp_path / "folder.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=".")
    with tarfile.open(archive) as tar:
        assert "." in tar.getnames()

    members = unpack_archive(archive, "folder.tgz", dest, DEFAULT_LIMITS)

    assert sorted(members) == sorted(n for n, _ in FILES)
    assert (dest / "series2/sub/IM3.dcm").read_bytes() == MR


# --- member names without the UTF-8 flag ----------------------------------------------------------------------

# A patient's name as Info-ZIP under LC_ALL=C or macOS (UTF-8) and a Windows exporter (cp1252) store it, unflagged.
UNFLAGGED_NAMES = ["Müller_Jürgen.dcm".encode(), "Müller Jürgen.dcm".encode("cp1252")]


@pytest.mark.parametrize("raw", UNFLAGGED_NAMES, ids=["utf_8", "cp1252"])
def test_zip_member_without_utf8_flag_is_named_as_the_same_file_on_disk_or_in_a_tar(
    tmp_path: Path, dest: Path, raw: bytes
) -> None:
    # zipfile decodes such a name as cp437 ("M├╝ller"), where the name scrub never finds the patient's name.
    raw_path = b"series1/" + raw
    archive = zip_with_raw_names(tmp_path / "export.zip", [(raw_path, MR)])

    members = unpack_archive(archive, "export.zip", dest, DEFAULT_LIMITS)

    assert members == [os.fsdecode(raw_path)]
    assert os.listdir(os.fsencode(dest / "series1")) == [raw]
    assert (dest / members[0]).read_bytes() == MR
    tar = make_tar(tmp_path / "export.tar", [(os.fsdecode(raw_path), MR)])
    assert unpack_archive(tar, "export.tar", tmp_path / "from_tar", DEFAULT_LIMITS) == members


def test_zip_member_names_are_compared_as_decoded(tmp_path: Path, dest: Path) -> None:
    # The same UTF-8 bytes, once flagged and once not, name one file: the second must not be written beside it.
    archive = zip_with_raw_names(
        tmp_path / "twice.zip", [("series1/Müller.dcm", MR), ("series1/Müller.dcm".encode(), CT)]
    )

    refuse(tmp_path, dest, archive, "member 'series1/Müller.dcm' appears twice")


# --- hostile members ------------------------------------------------------------------------------------------


def _hostile_tar_entries(tmp_path: Path) -> dict[str, tuple[list, str]]:
    victim = tmp_path / "victim"
    return {
        "absolute": ([(str(tmp_path / "escaped" / "abs.dcm"), MR)], "absolute path"),
        "dotdot": ([("ok/../../escaped.dcm", MR)], "'..'"),
        "dotdot_far": ([("../../../escaped.dcm", MR)], "'..'"),
        "symlink": ([_special("link", tarfile.SYMTYPE, str(victim)), ("link/evil.dcm", MR)], "is a link"),
        "relative_symlink": ([_special("up", tarfile.SYMTYPE, "../.."), ("up/evil.dcm", MR)], "is a link"),
        "hardlink": ([_special("hard.dcm", tarfile.LNKTYPE, str(victim))], "is a link"),
        "char_device": ([_special("tty", tarfile.CHRTYPE)], "device, fifo"),
        "block_device": ([_special("disk", tarfile.BLKTYPE)], "device, fifo"),
        "fifo": ([_special("pipe", tarfile.FIFOTYPE)], "device, fifo"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "absolute",
        "dotdot",
        "dotdot_far",
        "symlink",
        "relative_symlink",
        "hardlink",
        "char_device",
        "block_device",
        "fifo",
    ],
)
@pytest.mark.parametrize("name", ["hostile.tar", "hostile.tar.gz"])
def test_hostile_tar_member_is_refused_before_anything_is_written(
    tmp_path: Path, dest: Path, case: str, name: str
) -> None:
    entries, reason = _hostile_tar_entries(tmp_path)[case]
    (tmp_path / "victim").mkdir()
    # A harmless member first: the refusal must come before it is written, not after.
    archive = make_tar(tmp_path / name, [("first/IM1.dcm", MR), *entries])

    refuse(tmp_path, dest, archive, reason)

    assert files_in(dest) == []


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
    info.external_attr = mode << 16
    return info


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([("/tmp/escaped.dcm", MR)], "absolute path"),
        ([("../escaped.dcm", MR)], "'..'"),
        ([("ok\\..\\..\\escaped.dcm", MR)], "'..'"),
        ([("C:/escaped.dcm", MR)], "not a relative path"),
        ([(_zip_info("link", stat.S_IFLNK | 0o777), b"/tmp"), ("link/evil.dcm", MR)], "is a link"),
        ([(_zip_info("pipe", stat.S_IFIFO | 0o644), b"")], "device, fifo"),
        ([(_zip_info("tty", stat.S_IFCHR | 0o644), b"")], "device, fifo"),
    ],
    ids=["absolute", "dotdot", "backslash_dotdot", "drive_letter", "symlink", "fifo", "char_device"],
)
def test_hostile_zip_member_is_refused_before_anything_is_written(
    tmp_path: Path, dest: Path, entries: list, reason: str
) -> None:
    archive = make_zip(tmp_path / "hostile.zip", [("first/IM1.dcm", MR), *entries])

    refuse(tmp_path, dest, archive, reason)

    assert files_in(dest) == []


def _set_encrypted_flag(archive: Path) -> None:
    # zipfile cannot write encrypted members; set bit 0 of the flags in the local and the central header.
    data = bytearray(archive.read_bytes())
    local = data.find(b"PK\x03\x04")
    central = data.rfind(b"PK\x01\x02")
    data[local + 6] |= 0x01
    data[central + 8] |= 0x01
    archive.write_bytes(bytes(data))


def test_encrypted_zip_member_is_refused(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "secret.zip", [("IM1.dcm", MR)])
    _set_encrypted_flag(archive)
    assert zipfile.ZipFile(archive).infolist()[0].flag_bits & 0x1  # the patch took

    refuse(tmp_path, dest, archive, "is encrypted")


# --- duplicates -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "entries"),
    [
        ("dup.tar", [("a/IM1.dcm", MR), ("a/IM1.dcm", CT)]),
        ("dup_dot.tgz", [("a/IM1.dcm", MR), ("./a/IM1.dcm", CT)]),  # the same path, spelled differently
        ("dup.zip", [("a/IM1.dcm", MR), ("a/IM1.dcm", CT)]),
    ],
)
def test_duplicate_member_names_are_refused(tmp_path: Path, dest: Path, name: str, entries: list) -> None:
    archive = make_archive(tmp_path / name, entries)

    refuse(tmp_path, dest, archive, "appears twice")


@pytest.mark.parametrize("inner_name", ["x.tar", "x.zip"])
def test_nested_archive_may_not_replace_a_file_of_its_outer_archive(
    tmp_path: Path, dest: Path, inner_name: str
) -> None:
    # outer holds x/IM1.dcm and x.<ext>, which unpacks into x/ too: a second, different IM1.dcm
    (tmp_path / "build").mkdir()
    inner = make_archive(tmp_path / "build" / inner_name, [("IM1.dcm", CT)])
    archive = make_tar(tmp_path / "outer.tar", [("x/IM1.dcm", MR), (inner_name, inner.read_bytes())])

    refuse(tmp_path, dest, archive, "appears twice or would replace")

    assert (dest / "x/IM1.dcm").read_bytes() == MR  # the outer file was not overwritten


# --- corrupt and truncated ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["cut.tar", "cut.tgz", "cut.tar.gz", "cut.tar.bz2", "cut.tar.xz", "cut.zip", "CUT.ZIP"]
)
def test_archive_cut_in_half_is_refused(tmp_path: Path, dest: Path, name: str) -> None:
    archive = make_archive(tmp_path / name, FILES)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])

    refuse(tmp_path, dest, archive, "")


@pytest.mark.parametrize("cut", ["at_header", "inside_header"])
def test_plain_tar_cut_between_members_is_refused(tmp_path: Path, dest: Path, cut: str) -> None:
    # tarfile ends its member list quietly here: the members after the cut would vanish without a word.
    archive = make_tar(tmp_path / "cut.tar", FILES)
    first_end = tarfile.BLOCKSIZE + -(-len(MR) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    length = first_end if cut == "at_header" else first_end + 100
    archive.write_bytes(archive.read_bytes()[:length])

    refuse(tmp_path, dest, archive, "truncated")

    assert files_in(dest) == []


def test_tar_gz_with_damaged_data_is_refused_before_anything_is_written(tmp_path: Path, dest: Path) -> None:
    # Incompressible data is stored as is in deflate, so the damage passes zlib and only the gzip CRC sees it.
    archive = make_tar(tmp_path / "damaged.tar.gz", [("noise.bin", _noise(300_000)), ("IM1.dcm", MR)])
    data = bytearray(archive.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    archive.write_bytes(bytes(data))

    refuse(tmp_path, dest, archive, "corrupt or truncated")

    assert files_in(dest) == []


def test_zip_with_damaged_data_is_refused(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "damaged.zip", [("noise.bin", _noise(300_000))])
    data = bytearray(archive.read_bytes())
    data[1000:1064] = bytes(b ^ 0xFF for b in data[1000:1064])
    archive.write_bytes(bytes(data))

    refuse(tmp_path, dest, archive, "corrupt or truncated")


@pytest.mark.parametrize("name", ["garbage.tar.gz", "garbage.tgz", "garbage.tar", "garbage.tar.bz2", "garbage.zip"])
def test_garbage_named_as_an_archive_is_refused(tmp_path: Path, dest: Path, name: str) -> None:
    archive = tmp_path / name
    archive.write_bytes(_noise(20_000))

    refuse(tmp_path, dest, archive, "corrupt or truncated")


def test_dicom_file_named_as_an_archive_is_refused(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "IM1.zip"
    archive.write_bytes(MR)

    refuse(tmp_path, dest, archive, "corrupt or truncated")


# --- limits ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["many.tar.gz", "many.zip"])
def test_too_many_members_is_refused(tmp_path: Path, dest: Path, name: str) -> None:
    archive = make_archive(tmp_path / name, FILES)

    refuse(tmp_path, dest, archive, "max_members", replace(DEFAULT_LIMITS, max_members=2))
    assert len(unpack_archive(archive, name, tmp_path / "fits", replace(DEFAULT_LIMITS, max_members=3))) == 3


@pytest.mark.parametrize("name", ["big.tar.bz2", "big.zip"])
def test_total_size_over_the_limit_is_refused(tmp_path: Path, dest: Path, name: str) -> None:
    archive = make_archive(tmp_path / name, FILES)
    total = sum(len(data) for _, data in FILES)

    refuse(tmp_path, dest, archive, "max_total_gb", replace(DEFAULT_LIMITS, max_total_bytes=total - 1))
    assert len(unpack_archive(archive, name, tmp_path / "fits", replace(DEFAULT_LIMITS, max_total_bytes=total))) == 3


@pytest.mark.parametrize("name", ["bomb.tar.gz", "bomb.tar.bz2", "bomb.zip"])
def test_compression_bomb_is_refused(tmp_path: Path, dest: Path, name: str) -> None:
    archive = make_archive(tmp_path / name, [("IM1.dcm", MR), ("zeros.dcm", bytes(5 * 1024**2))])
    assert archive.stat().st_size < 50_000  # 5 MB of zeros shrinks to a few KB: a ratio of hundreds

    refuse(tmp_path, dest, archive, "max_ratio")
    # The ratio alone refused it: allowed a higher ratio, the same archive unpacks.
    assert len(unpack_archive(archive, name, tmp_path / "fits", replace(DEFAULT_LIMITS, max_ratio=100_000))) == 2


# --- nested archives ------------------------------------------------------------------------------------------


def test_nested_archive_is_unpacked_beside_itself_and_removed(tmp_path: Path, dest: Path) -> None:
    (tmp_path / "build").mkdir()
    inner = make_zip(tmp_path / "build" / "inner.zip", [("DICOM/IM1.dcm", CT), ("DICOM/IM2.dcm", MR)])
    archive = make_tar(tmp_path / "outer.tar.gz", [("top.dcm", MR), ("exports/inner.zip", inner.read_bytes())])
    before = snapshot(tmp_path, dest)

    members = unpack_archive(archive, "outer.tar.gz", dest, DEFAULT_LIMITS)

    expected = ["exports/inner/DICOM/IM1.dcm", "exports/inner/DICOM/IM2.dcm", "top.dcm"]
    assert sorted(members) == expected
    assert files_in(dest) == expected  # exports/inner.zip itself is gone
    assert (dest / "exports/inner/DICOM/IM1.dcm").read_bytes() == CT
    assert snapshot(tmp_path, dest) == before


def _three_levels(tmp_path: Path) -> Path:
    build = tmp_path / "build"
    build.mkdir()
    innermost = make_zip(build / "c.zip", [("IM1.dcm", MR)])
    middle = make_tar(build / "b.tgz", [("c.zip", innermost.read_bytes())])
    return make_tar(tmp_path / "a.tar", [("b.tgz", middle.read_bytes())])


def test_nesting_deeper_than_max_depth_is_refused(tmp_path: Path, dest: Path) -> None:
    archive = _three_levels(tmp_path)

    error = refuse(tmp_path, dest, archive, "max_depth", replace(DEFAULT_LIMITS, max_depth=2))

    assert str(error).startswith("scans/a.tar!b.tgz:")  # names the archive that held the too-deep one
    assert unpack_archive(archive, "a.tar", tmp_path / "fits", replace(DEFAULT_LIMITS, max_depth=3)) == ["b/c/IM1.dcm"]


def test_nested_archives_share_one_member_budget(tmp_path: Path, dest: Path) -> None:
    (tmp_path / "build").mkdir()
    inner = make_zip(tmp_path / "build" / "inner.zip", [("IM1.dcm", MR), ("IM2.dcm", CT)])
    archive = make_tar(tmp_path / "outer.tar", [("IM3.dcm", MR), ("IM4.dcm", CT), ("inner.zip", inner.read_bytes())])

    # Three outer members and two inner ones: five in all, though each archive alone is within four.
    refuse(tmp_path, dest, archive, "max_members", replace(DEFAULT_LIMITS, max_members=4))
    assert len(unpack_archive(archive, "outer.tar", tmp_path / "fits", replace(DEFAULT_LIMITS, max_members=5))) == 4


def test_small_nested_archive_inside_a_large_one_is_no_bomb(tmp_path: Path, dest: Path) -> None:
    # The ratio is per archive: 3 MB from the outer .tar must not count against the 10 KB inner .tgz.
    (tmp_path / "build").mkdir()
    inner = make_tar(tmp_path / "build" / "inner.tgz", [("IM1.dcm", MR)])
    archive = make_tar(tmp_path / "outer.tar", [("noise.bin", _noise(3 * 1024**2)), ("inner.tgz", inner.read_bytes())])

    members = unpack_archive(archive, "outer.tar", dest, DEFAULT_LIMITS)

    assert sorted(members) == ["inner/IM1.dcm", "noise.bin"]


def test_corrupt_nested_archive_is_refused_naming_both(tmp_path: Path, dest: Path) -> None:
    archive = make_tar(tmp_path / "outer.tgz", [("IM1.dcm", MR), ("exports/inner.zip", _noise(5000))])

    error = refuse(tmp_path, dest, archive, "corrupt or truncated")

    assert str(error).startswith("scans/outer.tgz!exports/inner.zip:")


@pytest.mark.parametrize("name", ["fuzz.tar", "fuzz.tgz", "fuzz.tar.bz2", "fuzz.zip"])
def test_damaged_archives_unpack_or_raise_archive_error_only(tmp_path: Path, dest: Path, name: str) -> None:
    archive = make_archive(tmp_path / name, FILES)
    data = archive.read_bytes()
    before = {path: digest for path, digest in snapshot(tmp_path, dest).items() if path != name}
    rng = random.Random(name)
    refused = 0
    for i in range(60):
        damaged = bytearray(data)
        for _ in range(rng.choice([1, 3, 8])):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if i % 3 == 0:
            damaged = damaged[: rng.randrange(len(damaged))]
        archive.write_bytes(bytes(damaged))
        try:
            unpack_archive(archive, name, dest / str(i), DEFAULT_LIMITS)
        except ArchiveError:
            refused += 1
    assert refused > 0
    assert {path: digest for path, digest in snapshot(tmp_path, dest).items() if path != name} == before


def test_an_archive_of_a_kind_that_cannot_be_unpacked_is_named_not_skipped(tmp_path: Path, dest: Path) -> None:
    # A .7z or .rar full of DICOMs, skipped as "not DICOM", would leave its images out of a published session.
    (tmp_path / "s" / "series").mkdir(parents=True)
    for name in ("series/a.7z", "b.RAR", "c.tar.zst"):
        (tmp_path / "s" / name).write_bytes(b"archive bytes")
    (tmp_path / "s" / "notes.txt").write_text("notes")
    staged = list_sources(tmp_path / "s", dest, DEFAULT_LIMITS)
    assert staged.problems == [
        f"{name}: a {suffix} archive, which the workflow cannot unpack: unpack it in place, or repack it as .zip"
        for name, suffix in (("b.RAR", ".rar"), ("c.tar.zst", ".tar.zst"), ("series/a.7z", ".7z"))
    ]
    assert [relpath for relpath, _ in staged.files] == ["notes.txt"]
    inner = make_archive(tmp_path / "outer.zip", [("x/inner.7z", b"archive bytes")])
    refuse(tmp_path, dest, inner, "member 'x/inner.7z' is a .7z archive, which the workflow cannot unpack")
