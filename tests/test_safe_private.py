"""The safe private list: well-formed data, and matching on real vendor files and on edge cases built here.

Real files: Siemens and Philips from nibabel's test data (skipped where nibabel is not installed), GE from
pydicom's own test files.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicom_deid.safe_private import (
    COLUMNS,
    DEFAULT_PATH,
    SafePrivateList,
    load_safe_private,
    partition_private,
    remove_unsafe_private,
    walk_private,
)

TOOLS = {"dcm2niix", "nibabel", "heudiconv"}
DCM2NIIX_COMMIT = "98ecd0bec9a1dfabd77b2be8c54c3bae97b92a55"


def nibabel_file(tmp_path: Path, name: str) -> pydicom.Dataset:
    nibabel = pytest.importorskip("nibabel")
    source = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / name
    target = tmp_path / name.removesuffix(".gz")
    target.write_bytes(gzip.decompress(source.read_bytes()))
    return pydicom.dcmread(target)


@pytest.fixture
def siemens(tmp_path):
    return nibabel_file(tmp_path, "siemens_dwi_1000.dcm.gz")


@pytest.fixture
def philips(tmp_path):
    return nibabel_file(tmp_path, "philips_mprage.dcm.gz")


@pytest.fixture
def ge():
    return pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))


def block_of(dataset: Dataset, group: int, creator: str) -> int:
    """The block byte this file gave `creator` in `group`."""
    creator_tags = [tag for tag in private_tags(dataset) if tag.group == group and tag.element <= 0xFF]
    return next(tag.element for tag in creator_tags if dataset[tag].value == creator)


def private_tags(dataset: Dataset) -> list[pydicom.tag.BaseTag]:
    tags = dataset.keys()  # keys() avoids parsing every value
    return [tag for tag in tags if tag.is_private]


def tag_in(dataset: Dataset, group: int, creator: str, low_byte: int) -> pydicom.tag.BaseTag:
    return pydicom.tag.Tag(group, (block_of(dataset, group, creator) << 8) | low_byte)


def row_keys(safe: SafePrivateList) -> set[tuple[str, int, int]]:
    return {(row.creator, row.group, row.element) for row in safe.rows}


# --- the data file ---


def test_tsv_has_the_documented_header_and_comments():
    lines = DEFAULT_PATH.read_text(encoding="utf-8").splitlines()
    comments = [line for line in lines if line.startswith("#")]
    header = next(line for line in lines if line and not line.startswith("#"))
    assert tuple(header.split("\t")) == COLUMNS
    assert any("rordenlab/dcm2niix" in line and DCM2NIIX_COMMIT in line for line in comments)
    assert lines.index(header) == len(comments), "comments belong at the top, before the header"


def test_every_row_is_well_formed():
    lines = [line for line in DEFAULT_PATH.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    for line in lines[1:]:
        creator, group, element, name, read_by, why, source = line.split("\t")
        assert creator == creator.strip(" \x00") and creator, line
        assert re.fullmatch(r"[0-9A-F]{4}", group) and int(group, 16) % 2 == 1, line
        assert re.fullmatch(r"[0-9A-F]{2}", element), line
        assert name and why, line
        assert set(read_by.split(",")) <= TOOLS, line
        assert any(tool in source for tool in TOOLS), f"row names no source: {line}"


def test_no_duplicate_rows():
    safe = load_safe_private()
    assert len(row_keys(safe)) == len(safe.rows)


def test_known_rows_are_listed():
    keys = row_keys(load_safe_private())
    assert ("SIEMENS MR HEADER", 0x0019, 0x0C) in keys  # B_value
    assert ("SIEMENS MR HEADER", 0x0019, 0x0E) in keys  # DiffusionGradientDirection
    assert ("SIEMENS CSA HEADER", 0x0029, 0x10) in keys  # CSA image header
    assert ("SIEMENS CSA HEADER", 0x0029, 0x20) in keys  # CSA series header
    assert ("Philips Imaging DD 001", 0x2001, 0x03) in keys  # diffusion b-factor
    assert ("Philips MR Imaging DD 001", 0x2005, 0x0E) in keys  # scale slope
    assert ("GEMS_PARM_01", 0x0043, 0x39) in keys  # slop_int_6..9: b-value
    assert {("GEMS_ACQU_01", 0x0019, low) for low in (0xBB, 0xBC, 0xBD)} <= keys  # diffusion direction


def test_medcom_history_is_not_listed():
    """Siemens MEDCOM headers hold identifying text and no conversion tool reads them."""
    assert not any("MEDCOM" in row.creator for row in load_safe_private().rows)


def test_the_list_is_read_once_per_process():
    assert load_safe_private() is load_safe_private()
    assert load_safe_private(str(DEFAULT_PATH)) is load_safe_private()


def test_a_malformed_row_fails_loudly(tmp_path):
    bad = tmp_path / "bad.tsv"
    header = "\t".join(COLUMNS)
    bad.write_text(f"# test\n{header}\nSIEMENS CSA HEADER\t0028\t10\tx\tdcm2niix\tx\tdcm2niix x\n")
    with pytest.raises(ValueError, match="odd"):
        load_safe_private(bad)


# --- real files ---


def test_siemens_csa_headers_are_kept_and_unlisted_siemens_elements_removed(siemens):
    kept, removed = partition_private(siemens)
    assert tag_in(siemens, 0x0029, "SIEMENS CSA HEADER", 0x10) in kept
    assert tag_in(siemens, 0x0029, "SIEMENS CSA HEADER", 0x20) in kept
    assert tag_in(siemens, 0x0019, "SIEMENS MR HEADER", 0x0C) in kept  # B_value
    assert tag_in(siemens, 0x0019, "SIEMENS MR HEADER", 0x0B) in removed  # SliceMeasurementDuration: unread
    assert tag_in(siemens, 0x0029, "SIEMENS MEDCOM HEADER2", 0x60) in removed
    assert pydicom.tag.Tag(0x0029, block_of(siemens, 0x0029, "SIEMENS MEDCOM HEADER2")) in removed
    assert pydicom.tag.Tag(0x0029, block_of(siemens, 0x0029, "SIEMENS CSA HEADER")) in kept
    assert set(kept).isdisjoint(removed) and len(kept) + len(removed) == len(private_tags(siemens))


def test_philips_diffusion_and_scale_elements_survive_inside_frames(philips, tmp_path):
    remove_unsafe_private(philips)
    philips.save_as(tmp_path / "out.dcm")
    again = pydicom.dcmread(tmp_path / "out.dcm")
    for frame in again.PerFrameFunctionalGroupsSequence:
        private_frame = frame[tag_in(frame, 0x2005, "Philips MR Imaging DD 005", 0x0F)].value[0]
        for creator, group, low in [
            ("Philips Imaging DD 001", 0x2001, 0x03),  # b-factor
            ("Philips MR Imaging DD 001", 0x2005, 0x0E),  # scale slope
            ("Philips MR Imaging DD 001", 0x2005, 0xB0),  # gradient direction RL
        ]:
            assert tag_in(private_frame, group, creator, low) in private_frame
        assert tag_in(private_frame, 0x2001, "Philips Imaging DD 001", 0x01) not in private_frame  # chemical shift
    stack = again[tag_in(again, 0x2001, "Philips Imaging DD 001", 0x5F)].value[0]
    assert tag_in(stack, 0x2005, "Philips MR Imaging DD 001", 0x71) in stack  # angulation AP
    assert tag_in(again, 0x2005, "Philips MR Imaging DD 001", 0x1E) not in again  # unlisted top-level element
    assert all(keep for _, _, keep in walk_private(again))


def test_ge_listed_elements_kept_and_others_removed(ge):
    kept, removed = partition_private(ge)
    assert tag_in(ge, 0x0019, "GEMS_ACQU_01", 0x17) in kept  # series plane
    assert tag_in(ge, 0x0043, "GEMS_PARM_01", 0x2A) in kept  # user defined data
    assert tag_in(ge, 0x0043, "GEMS_PARM_01", 0x27) in removed  # scan pitch ratio: unread
    iden = block_of(ge, 0x0009, "GEMS_IDEN_01")
    assert all(tag in removed for tag in private_tags(ge) if tag.group == 0x0009)
    assert pydicom.tag.Tag(0x0009, iden) in removed


# --- matching rules, on datasets built here ---


def siemens_like(creator_block: int = 0x11, creator: str = "SIEMENS CSA HEADER") -> Dataset:
    ds = Dataset()
    ds.add_new((0x0029, 0x0010), "LO", "SIEMENS MEDCOM HEADER")
    ds.add_new((0x0029, creator_block), "LO", creator)
    ds.add_new((0x0029, 0x1010), "OB", b"medcom")
    ds.add_new((0x0029, (creator_block << 8) | 0x10), "OB", b"csa image")
    ds.add_new((0x0029, (creator_block << 8) | 0x08), "CS", "IMAGE NUM 4")
    return ds


def test_the_block_byte_is_free_and_the_creator_decides():
    safe = load_safe_private()
    ds = siemens_like(0x11)
    assert safe.is_safe(ds, (0x0029, 0x1110))
    assert not safe.is_safe(ds, (0x0029, 0x1010))  # same number under another creator
    assert not safe.is_safe(ds, (0x0029, 0x1108))  # listed creator, unlisted element
    assert safe.is_safe(ds, (0x0029, 0x0011)) and not safe.is_safe(ds, (0x0029, 0x0010))


@pytest.mark.parametrize("padded", ["SIEMENS CSA HEADER ", "SIEMENS CSA HEADER\x00"])
def test_creator_padding_is_ignored(padded):
    assert load_safe_private().is_safe(siemens_like(0x11, padded), (0x0029, 0x1110))


def test_creator_case_matters():
    assert not load_safe_private().is_safe(siemens_like(0x11, "Siemens CSA Header"), (0x0029, 0x1110))


def test_elements_without_a_creator_or_outside_blocks_are_not_safe():
    safe = load_safe_private()
    ds = Dataset()
    ds.add_new((0x0029, 0x1010), "OB", b"orphan")
    ds.add_new((0x0029, 0x0000), "UL", 4)
    assert not safe.is_safe(ds, (0x0029, 0x1010))
    assert not safe.is_safe(ds, (0x0029, 0x0000))
    with pytest.raises(ValueError):
        safe.is_safe(ds, (0x0010, 0x0010))


def xa_series(container_vr: str) -> Dataset:
    """Siemens XA layout: the SDS 01 elements sit inside private sequence (0021,10FE)."""
    item = Dataset()
    item.add_new((0x0021, 0x0010), "LO", "SIEMENS MR SDS 01")
    item.add_new((0x0021, 0x1001), "IS", "88")  # UsedPatientWeight: unlisted
    item.add_new((0x0021, 0x1009), "LO", "p2")  # PATModeText: listed
    ds = Dataset()
    ds.add_new((0x0021, 0x0010), "LO", "SIEMENS MR SDS 01")
    if container_vr == "SQ":
        ds.add_new((0x0021, 0x10FE), "SQ", Sequence([item]))
    else:
        ds.add_new((0x0021, 0x10FE), "UN", b"\x00" * 8)
    return ds


def test_kept_private_sequences_are_filtered_inside():
    ds = xa_series("SQ")
    assert remove_unsafe_private(ds) == 1
    item = ds[0x0021, 0x10FE].value[0]
    assert (0x0021, 0x1009) in item and (0x0021, 0x1001) not in item


def test_an_unparsed_container_is_removed():
    ds = xa_series("UN")
    assert partition_private(ds) == ([pydicom.tag.Tag(0x0021, 0x0010)], [pydicom.tag.Tag(0x0021, 0x10FE)])


def test_a_removed_private_sequence_is_not_entered():
    ds = xa_series("SQ")
    ds[0x0021, 0x0010].value = "SOMEONE ELSE"
    decisions = [(tag, keep) for _, tag, keep in walk_private(ds)]
    assert decisions == [((0x0021, 0x0010), False), ((0x0021, 0x10FE), False)]
    assert remove_unsafe_private(ds) == 2 and len(ds) == 0


def test_public_sequences_are_entered():
    outer = Dataset()
    outer.PerFrameFunctionalGroupsSequence = Sequence([xa_series("SQ")])
    assert remove_unsafe_private(outer) == 1
