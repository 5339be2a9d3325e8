"""Known values found outside their own attributes are scrubbed; UIDs become valid 2.25 UIDs; the scan is as wide.

Real packaged files with identifying values planted (example_tree), plus values copied where a real export
repeats them: descriptions, a private text element, a private binary element in UTF-16.
"""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file

from dicom_deid import tags
from dicom_deid.dicognito_adapter import pseudonymous_uid
from dicom_deid.example_tree import identity_for, plant_identity
from dicom_deid.records import default_policy
from dicom_deid.scrub import scrub, scrub_path
from dicom_deid.stages.anonymize import FileDeidentifier
from dicom_deid.verify.files import check_file
from helpers import elements

SEED = "0123456789abcdef0123456789abcdef"
IDENTITY = identity_for("EPL31_LHS_0001")
PATIENT_ID = IDENTITY.values["PatientID"]
PRIVATE_CREATOR = "ACME HISTORY"


def planted(source: str = "MR_small.dcm") -> pydicom.Dataset:
    dataset = pydicom.dcmread(get_testdata_file(source))
    plant_identity(dataset, IDENTITY, session="01", series="t1", instance=1)
    return dataset


def deidentify(dataset: pydicom.Dataset, tmp_path: Path, **policy) -> tuple[pydicom.Dataset, object, Path, Path]:
    source, output = tmp_path / "in.dcm", tmp_path / "out.dcm"
    dataset.save_as(source, enforce_file_format=True)
    result = FileDeidentifier(default_policy(SEED, **policy)).process_file(source, output, "IM1.dcm")
    assert result.outcome == "written", result
    return pydicom.dcmread(output), result, source, output


def test_uids_become_valid_uuid_derived_uids_the_same_in_every_job():
    uid = "1.2.826.0.1.3680043.8.498.12345678901234567890"
    first, again = pseudonymous_uid(SEED, uid), pseudonymous_uid(SEED, uid)
    assert first == again and first.startswith("2.25.") and len(first) <= 64
    assert pseudonymous_uid("another secret key 1234567890ab", uid) != first
    number = int(first.removeprefix("2.25."))
    assert number < 2**128 and (number >> 76) & 0xF == 8  # a version-8 UUID


def test_instance_uids_remapped_class_and_scheme_uids_kept(tmp_path):
    dataset = planted()
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodingSchemeUID = "T-A0100", "SRT", "2.16.840.1.113883.6.96"
    dataset.AnatomicRegionSequence = [code]
    original_sop = dataset.SOPInstanceUID
    output, *_ = deidentify(dataset, tmp_path)
    assert output.SOPInstanceUID == pseudonymous_uid(SEED, original_sop)
    assert output.file_meta.MediaStorageSOPInstanceUID == output.SOPInstanceUID
    assert output.SOPClassUID == dataset.SOPClassUID
    assert output.file_meta.TransferSyntaxUID == dataset.file_meta.TransferSyntaxUID
    assert output.AnatomicRegionSequence[0].CodingSchemeUID == "2.16.840.1.113883.6.96"
    assert all(str(e.value).startswith("2.25.") for e in elements(output) if e.VR == "UI" and "Instance" in e.keyword)


def test_values_repeated_in_free_text_get_their_pseudonyms(tmp_path):
    dataset = planted()
    name = str(dataset.PatientName)
    dataset.StudyDescription = f"{name} {PATIENT_ID}"
    dataset.ImageComments = f"scanned at {IDENTITY.values['StationName']}"
    output, result, *_ = deidentify(dataset, tmp_path)
    assert output.StudyDescription == f"{output.PatientName} {output.PatientID}"
    assert output.ImageComments == f"scanned at {output.StationName}"
    assert result.scrubbed["PatientID in StudyDescription"] == 1
    assert result.scrubbed["StationName in ImageComments"] == 1


@pytest.mark.parametrize("prefix", ["by ", "by: ", "seen by ", "seen by: "])
def test_a_scrubbed_value_keeps_one_pad_space_at_most(tmp_path, prefix):
    # The original's pad space stayed, and another was added: dcm2niix then kept a trailing space in the sidecar.
    dataset = planted()
    dataset.ImageComments = f"{prefix}{dataset.PatientName}"
    _, result, _, output_path = deidentify(dataset, tmp_path)
    assert result.scrubbed["PatientName in ImageComments"] == 1
    raw = pydicom.dcmread(output_path).get_item("ImageComments").value
    assert len(raw) % 2 == 0 and not raw.endswith(b"  ")


def test_short_values_are_only_replaced_as_whole_words(tmp_path):
    dataset = planted()
    dataset.StudyID = "1"  # too short to search for at all
    dataset.RequestedProcedureID = "204"
    dataset.ImageComments = "1 of 85204; protocol 204"
    output, result, *_ = deidentify(dataset, tmp_path)
    assert output.ImageComments.startswith("1 of 85204; protocol ")
    assert not output.ImageComments.endswith(" 204")
    assert result.scrubbed == {"RequestedProcedureID in ImageComments": 1}


def _private_history(dataset: pydicom.Dataset, text: bytes) -> None:
    block = dataset.private_block(0x0029, PRIVATE_CREATOR, create=True)
    block.add_new(0x60, "OB", text)


def test_utf16_value_in_a_kept_private_element_is_replaced_by_bytes_of_the_same_length(tmp_path):
    dataset = planted()
    history = b"<hist>" + PATIENT_ID.encode("utf_16_le") + b"<end>\x00"  # even length, as DICOM stores it
    _private_history(dataset, history)
    output, result, _source, output_path = deidentify(dataset, tmp_path, private_tags="keep")
    kept = output.private_block(0x0029, PRIVATE_CREATOR)[0x60].value
    assert len(kept) == len(history) and kept.startswith(b"<hist>") and kept.endswith(b"<end>\x00")
    assert PATIENT_ID.encode("utf_16_le") not in output_path.read_bytes()
    assert result.scrubbed == {"PatientID in private (0029,xx60)": 1}
    assert result.private_kept == 2 and result.private_removed == 0  # the creator and its element


def test_the_verifier_catches_a_utf16_value_left_in_a_private_element(tmp_path):
    dataset = planted()
    _, _, source, output_path = deidentify(dataset, tmp_path, private_tags="keep")
    leaked = pydicom.dcmread(output_path)
    _private_history(leaked, PATIENT_ID.encode("utf_16_le"))
    leaked.save_as(output_path, enforce_file_format=True)
    failures = check_file(source, output_path, "IM1.dcm", default_policy(SEED, private_tags="keep"))
    # Named by the attribute it came from and where it lies, never by the value.
    assert failures["no_original_values_in_bytes"] == ["IM1.dcm: the original PatientID is present in (0029,1060)"]


def test_safe_policy_removes_unlisted_private_elements_and_the_verifier_holds_it(tmp_path):
    dataset = planted()
    _private_history(dataset, PATIENT_ID.encode("utf_16_le"))
    output, result, source, output_path = deidentify(dataset, tmp_path)  # default: private_tags: safe
    assert not any(e.tag.is_private for e in elements(output))
    assert result.private_removed == 2 and result.private_kept == 0
    leaked = pydicom.dcmread(output_path)
    _private_history(leaked, b"harmless")
    leaked.save_as(output_path, enforce_file_format=True)
    failures = check_file(source, output_path, "IM1.dcm", default_policy(SEED))
    assert len(failures["policy_held"]) == 2  # creator and element: neither is on the safe list


@pytest.mark.parametrize("placeholder", ["ANONYMOUS", "Anon", "PHANTOM"])
def test_placeholders_identify_nobody(tmp_path, placeholder):
    dataset = planted()
    dataset.PatientName = placeholder
    dataset.ImageComments = placeholder
    output, _result, source, output_path = deidentify(dataset, tmp_path)
    assert output.ImageComments == placeholder  # not scrubbed, and not a verification failure
    assert not any(check_file(source, output_path, "IM1.dcm", default_policy(SEED)).values())


def test_a_real_name_left_in_free_text_still_fails(tmp_path):
    dataset = planted()
    _, _, source, output_path = deidentify(dataset, tmp_path)
    leaked = pydicom.dcmread(output_path)
    leaked.ImageComments = f"patient {dataset.PatientName.family_name} tolerated the scan"
    leaked.save_as(output_path, enforce_file_format=True)
    failures = check_file(source, output_path, "IM1.dcm", default_policy(SEED))
    assert failures["no_original_values_in_bytes"]


def test_a_value_equal_to_the_manufacturer_identifies_nobody(tmp_path):
    dataset = planted()
    dataset.Manufacturer = dataset.InstitutionName
    output, _, source, output_path = deidentify(dataset, tmp_path)
    assert output.Manufacturer == dataset.InstitutionName  # names a thing: never rewritten
    assert not any(check_file(source, output_path, "IM1.dcm", default_policy(SEED)).values())


def test_a_word_of_the_data2bids_label_is_no_leftover(tmp_path):
    dataset = planted()
    dataset.InstitutionalDepartmentName = "MRI"
    label = "EPL31_LHS_0001_SE01_MRI"
    output, _, source, output_path = deidentify(dataset, tmp_path, patient_name=label)
    assert output.PatientName == label
    assert not any(check_file(source, output_path, "IM1.dcm", default_policy(SEED, patient_name=label)).values())


def test_a_uid_inside_a_longer_uid_is_left_alone(tmp_path):
    dataset = planted()
    study = dataset.StudyInstanceUID
    block = dataset.private_block(0x0029, PRIVATE_CREATOR, create=True)
    block.add_new(0x61, "LO", f"{study}.77\\{study}")  # another UID that merely starts like the study's
    output, result, *_ = deidentify(dataset, tmp_path, private_tags="keep")
    first, second = output.private_block(0x0029, PRIVATE_CREATOR)[0x61].value
    assert first == f"{study}.77" and second == output.StudyInstanceUID
    assert result.scrubbed == {"StudyInstanceUID in private (0029,xx61)": 1}
    assert not any(result.failures.values())  # the verifier draws the same line


def test_a_fake_name_that_contains_an_original_name_part_is_no_leftover(tmp_path):
    # dicognito draws fake names from a list of common names: ROSALINDA may stand in for an original ROSALIND.
    dataset = planted()
    dataset.OperatorsName = "TECHNICIAN^OPAL"
    given = dataset.PatientName.given_name
    assert len(given) >= 6
    _, _, source, output_path = deidentify(dataset, tmp_path)
    output = pydicom.dcmread(output_path)
    output.OperatorsName = f"SMITH^{given}A"  # a pseudonym, written in place of another name
    output.save_as(output_path, enforce_file_format=True)
    assert not any(check_file(source, output_path, "IM1.dcm", default_policy(SEED)).values())
    output.ImageComments = f"{given}A"  # the same bytes outside a pseudonym are a leftover
    output.save_as(output_path, enforce_file_format=True)
    assert check_file(source, output_path, "IM1.dcm", default_policy(SEED))["no_original_values_in_bytes"]


def test_a_pseudonym_written_into_free_text_is_not_scrubbed_again():
    # The full name goes first (longest first), then its parts; a part must not be replaced inside the pseudonym
    # just written: a fake ROSALINDA for ROSALIND became ROSALINDAA, which holds ROSALIND, and failed the file.
    dataset = pydicom.Dataset()
    dataset.ImageComments = "QUIMBY^ROSALIND^EXAMPLE and QUIMBY^ROSALIND^EXAMPLE, ROSALIND"
    pairs = {
        "QUIMBY^ROSALIND^EXAMPLE": ("WILKINS^ROSALINDA^DONOVAN", "PatientName"),
        "QUIMBY": ("WILKINS", "PatientName"),
        "ROSALIND": ("ROSALINDA", "PatientName"),
        "EXAMPLE": ("DONOVAN", "PatientName"),
    }
    counts = scrub(dataset, pairs)
    pseudonym = "WILKINS^ROSALINDA^DONOVAN"
    assert dataset.ImageComments == f"{pseudonym} and {pseudonym}, ROSALINDA"  # the lone part still replaced
    assert counts == {("PatientName", "ImageComments"): 3}


def test_names_in_a_path_are_replaced_by_the_files_own_pseudonyms():
    uid = "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"
    pairs = {uid: ("2.25.42", "SOPInstanceUID"), "4MR1": ("ZX81QQ", "PatientID"), "MUELLER": ("WIGGINS", "PatientName")}
    # storescp's MR.<SOP Instance UID>.dcm: dots around the UID that are not its own
    assert scrub_path(f"MUELLER_4MR1/MR.{uid}.dcm", pairs) == "WIGGINS_ZX81QQ/MR.2.25.42.dcm"
    # the value rule: a UID only whole, a value under 6 characters only as a word
    assert scrub_path(f"a/{uid}5.dcm", pairs) == f"a/{uid}5.dcm"
    assert scrub_path(f"a/{uid}.1/x", pairs) == f"a/{uid}.1/x"
    assert scrub_path("IM4MR1/MUELLERS.dcm", pairs) == "IM4MR1/WIGGINSS.dcm"
    assert scrub_path("anat/t1/IM_0001.dcm", pairs) == "anat/t1/IM_0001.dcm"
    assert scrub_path("MUELLER/x", {"MUELLER": ("A/B", "PatientName")}) == "A_B/x"
    # A name in UTF-8, or in Latin-1 bytes (an older system's), that Python holds as surrogates
    pairs = {"Müller": ("WIGGINS", "PatientName")}
    assert scrub_path("Müller/x", pairs) == scrub_path(os.fsdecode(b"M\xfcller/x"), pairs) == "WIGGINS/x"


# --- names in every script: pydicom's character set test files ------------------------------------------------


def _charset_file(name: str) -> pydicom.Dataset:
    dataset = pydicom.dcmread(get_charset_files(name)[0])
    # These files are text samples; those without pixel data must not read as cut images.
    for keyword in ("Rows", "Columns"):
        if "PixelData" not in dataset and keyword in dataset:
            delattr(dataset, keyword)
    return dataset


def _pieces(name: str) -> list[str]:
    # What a description may repeat: each component group (alphabetic=ideographic=phonetic) and each part.
    groups = name.split("=")
    return [piece for group in groups for piece in (group, *group.split("^")) if tags.scan_length(piece) >= 3]


CHARSET_FILES = ["chrFren.dcm", "chrGreek.dcm", "chrRuss.dcm", "chrArab.dcm", "chrHbrw.dcm", "chrH31.dcm",
                 "chrH32.dcm", "chrI2.dcm", "chrX1.dcm", "chrX2.dcm", "chrJapMulti.dcm",
                 "chrKoreanMulti.dcm"]  # fmt: skip


@pytest.mark.parametrize("name", CHARSET_FILES)
def test_every_group_and_part_of_a_name_is_scrubbed_in_its_own_script(tmp_path, name):
    # Japanese, Korean and Chinese sites write names as alphabetic=ideographic=phonetic, often in ISO 2022 code
    # extensions, whose bytes switch character sets by escape sequences.
    dataset = _charset_file(name)
    full = str(dataset.PatientName)
    dataset.StudyDescription = f"Study of {full}"
    dataset.ImageComments = "patient " + " ".join(full.replace("=", "^").split("^"))
    pieces = _pieces(full)
    assert pieces
    output, *_ = deidentify(dataset, tmp_path)
    texts = [str(element.value) for element in elements(output) if element.VR in ("LO", "LT", "ST", "SH")]
    assert [(piece, text) for piece in pieces for text in texts if piece in text] == []


def test_iso_2022_text_without_a_known_value_keeps_its_bytes(tmp_path):
    # Decoded to be searched, a value pydicom encoded anew would lose its writer's own escape sequences.
    dataset = _charset_file("chrH31.dcm")
    dataset.SeriesDescription = "QQMRI"  # stands in for bytes pydicom would not write: an escape to ASCII first
    dataset.ImageComments = f"patient {dataset.PatientName}"
    source = tmp_path / "in.dcm"
    dataset.save_as(source, enforce_file_format=True)
    source.write_bytes(source.read_bytes().replace(b"QQMRI ", b"\x1b(BMRI"))
    output = tmp_path / "out.dcm"
    result = FileDeidentifier(default_policy(SEED)).process_file(source, output, "IM1.dcm")
    assert result.outcome == "written" and result.scrubbed
    assert pydicom.dcmread(output).get_item("SeriesDescription").value == b"\x1b(BMRI"


@pytest.mark.parametrize("name", ["chrH31.dcm", "chrH32.dcm", "chrI2.dcm", "chrX1.dcm", "chrX2.dcm"])
def test_the_verifier_finds_an_ideographic_name_part_left_in_free_text(tmp_path, name):
    dataset = _charset_file(name)
    ideographic = str(dataset.PatientName).split("=")[1]
    family = ideographic.split("^")[0]
    _, _, source, output_path = deidentify(dataset, tmp_path)
    leaked = pydicom.dcmread(output_path)
    leaked.ImageComments = f"{family}{ideographic.split('^')[1]} tolerated the scan"  # no space: one run of text
    leaked.save_as(output_path, enforce_file_format=True)
    failures = check_file(source, output_path, "IM1.dcm", default_policy(SEED))
    assert any("ImageComments" in failure for failure in failures["no_original_values_in_bytes"]), failures


@pytest.mark.parametrize("name", ["chrX1.dcm", "chrH31.dcm", "chrI2.dcm"])
def test_a_cjk_name_written_without_spaces_after_letters_or_digits_is_found(tmp_path, name):
    # CJK text has no spaces between words: a name right after an ID ("ID7太郎山田") is still a name.
    dataset = _charset_file(name)
    family, given = str(dataset.PatientName).split("=")[1].split("^")[:2]
    dataset.ImageComments = f"ID7{given}{family}"
    output, *_ = deidentify(dataset, tmp_path)
    searched = [piece for piece in (family, given) if tags.scan_length(piece) >= 3]  # 王 and 洪 are one character
    assert searched and [piece for piece in searched if piece in output.ImageComments] == []
    _, _, source, output_path = deidentify(_charset_file(name), tmp_path)
    leaked = pydicom.dcmread(output_path)
    leaked.ImageComments = f"ID7{given}{family}"
    leaked.save_as(output_path, enforce_file_format=True)
    failures = check_file(source, output_path, "IM1.dcm", default_policy(SEED))
    assert any("ImageComments" in failure for failure in failures["no_original_values_in_bytes"]), failures


def test_a_session_of_many_values_names_files_as_a_plain_pass_would():
    # A session hands on a UID per file: the index by first bytes must find what a pass over every needle finds.
    from dicom_deid.scrub import NameScrubber

    pairs = {f"1.2.840.113619.2.55.3.{i}": (f"2.25.{i * 7919}", "SOPInstanceUID") for i in range(500)}
    pairs |= {"MÜLLER": ("HAYS", "PatientName"), "4711": ("9QJ7", "PatientID")}
    many, few = NameScrubber(pairs), NameScrubber({k: pairs[k] for k in ("MÜLLER", "4711", "1.2.840.113619.2.55.3.17")})
    for name in ("MR.1.2.840.113619.2.55.3.17.dcm", "MÜLLER_4711/notes.txt", "scan 4711.pdf", "IM1.dcm"):
        assert many.path(name) == few.path(name)
    assert many.path("MÜLLER_4711/MR.1.2.840.113619.2.55.3.17.xml") == "HAYS_9QJ7/MR.2.25.134623.xml"


def test_name_spellings_are_the_ways_a_folder_typed_by_hand_spells_a_value():
    assert set(tags.name_spellings("Müller")) == {
        *("MUELLER", "Mueller", "mueller"),  # German: ü as ue
        *("MULLER", "Muller", "muller"),  # the umlaut dropped
        *("MÜLLER", "müller"),
    }
    capitals = tags.name_spellings("MÜLLER^HANS")
    assert "MUELLER^HANS" in capitals and "MUeLLER^HANS" not in capitals
    assert "SOREN" in tags.name_spellings("Søren")  # ø has no decomposition: a letter of its own
    assert tags.name_spellings("1.2.840.10008.1") == tags.name_spellings("20200115") == ()  # nothing to spell
    assert tags.name_spellings("Jo") == ()  # too short to search
