"""The one place that lists which DICOM attributes the workflow replaces, removes and scans for.

Source and specification: docs/tags.md (the data2bids "Imaging Directory Setup" rule, DICOM PS3.6 tags).
"""

import functools
import re
import unicodedata

# Overwritten with consistent pseudonymous values; kept present so viewers still load the files.
REPLACED = (
    "AccessionNumber",
    "FillerOrderNumberImagingServiceRequest",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "OtherPatientNames",
    "PatientID",
    "PerformedProcedureStepID",
    "PlacerOrderNumberImagingServiceRequest",
    "RequestedProcedureID",
    "ScheduledProcedureStepID",
    "StationName",
    "StudyID",
)

# Deleted at every depth (dicognito alone replaces three of them instead).
REMOVED = (
    "CountryOfResidence",
    "Occupation",
    "PatientAddress",
    "RegionOfResidence",
)

# Further originals whose bytes must not appear anywhere in an output file (dicognito replaces them).
ALSO_SCANNED = (
    "PatientName",
    "PatientBirthDate",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
)

SCANNED = REPLACED + REMOVED + ALSO_SCANNED

# What InstitutionalDepartmentName becomes: dicognito's RADIOLOGY, or IMAGING where it already was RADIOLOGY.
DEPARTMENT_PSEUDONYMS = ("RADIOLOGY", "IMAGING")

# Profile basic: the combined codes of Table E.1-1 (X/Z, X/D, X/Z/D, Z/D, X/Z/U*) choose by the attribute's Type in
# the IOD. These are Type 1 in an image IOD this workflow meets: they get a dummy value (D), never removed or
# emptied. The Type 2 ones are emptied (Z), never removed. Every other attribute takes the first code (X, or Z
# for Z/D). The 13 REPLACED keep their pseudonyms wherever the code allows a dummy.
PROFILE_TYPE_1 = (
    "AcquisitionDateTime",  # Type 1C in the Enhanced MR/CT Image modules
    "ContentDate",  # Type 1 in the Multi-frame Functional Groups module
    "ContentTime",  # Type 1 in the Multi-frame Functional Groups module
    "SeriesDate",  # Type 1 in the PET Series module
    "SeriesTime",  # Type 1 in the PET Series module
    "DeviceSerialNumber",  # Type 1 in the Enhanced General Equipment module
)
PROFILE_TYPE_2 = (
    "AcquisitionDate",  # Type 2 in the PET Image module
    "AcquisitionTime",  # Type 2 in the PET Image module
)

# May be kept (config `keep`) only with `allow_keep_identifying: true`: they identify the patient directly. So
# does any date (VR DA or DT, config_checks.keep_problems): kept beside the dates moved by the subject's offset,
# a kept date gives the offset away, and with it the real PatientBirthDate.
KEEP_NEEDS_OVERRIDE = (
    *REMOVED,
    "PatientID",
    "PatientName",
    "OtherPatientNames",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientBirthDate",
    "PatientTelephoneNumbers",
)
KEEP_NEEDS_OVERRIDE_VRS = ("DA", "DT")

# UIDs that name standard or vendor things (SOP classes, transfer syntaxes, code lists, creators), not the
# patient's instances: kept as they are, wherever they occur. Every other UID is remapped.
KEPT_UID_SUFFIXES = ("ClassUID", "TransferSyntaxUID")
KEPT_UID_KEYWORDS = frozenset(
    {
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "ContextUID",
        "CreatorVersionUID",
        "MappingResourceUID",
        "PrivateInformationCreatorUID",
        "TemplateExtensionCreatorUID",
        "TemplateExtensionOrganizationUID",
    }
)
STANDARD_UID_ROOT = "1.2.840.10008."  # every UID the DICOM standard itself defines


def uid_is_kept(keyword: str, value: str) -> bool:
    return keyword.endswith(KEPT_UID_SUFFIXES) or keyword in KEPT_UID_KEYWORDS or value.startswith(STANDARD_UID_ROOT)


# Attributes that name things rather than people: never rewritten, and a known value found only in them
# (pydicom's MR_small has an InstitutionName equal to its Manufacturer) identifies nobody.
NAMING_KEYWORDS = frozenset(
    {
        "Manufacturer",
        "ManufacturerModelName",
        "SoftwareVersions",
        "CodeValue",
        "CodingSchemeDesignator",
        "CodingSchemeVersion",
        "LongCodeValue",
        "URNCodeValue",
        "SpecificCharacterSet",
        "ImplementationClassUID",  # file meta: the writing software, not the patient
        "ImplementationVersionName",
    }
)

# The file meta a written file holds (PS3.10 7.1): it describes that file and the software that wrote it. The
# original's other elements (AE titles and address of the sending PACS, private information) and its preamble
# are not carried over.
FILE_META_WRITTEN = frozenset(
    {
        "FileMetaInformationGroupLength",
        "FileMetaInformationVersion",
        "MediaStorageSOPClassUID",
        "MediaStorageSOPInstanceUID",
        "TransferSyntaxUID",
        "ImplementationClassUID",
        "ImplementationVersionName",
    }
)

# Data Set Trailing Padding (FFFC,FFFC): bytes after the data set that readers ignore, whatever they hold.
TRAILING_PADDING = 0xFFFCFFFC

# Values that stand for "nobody" in exports that were already (partly) anonymized, and phantoms: never a
# leftover to fail on, whichever attribute holds them. Compared case-insensitively, whole value. 19000101 is
# the dummy date of earlier anonymizers (nibabel's Siemens T1 map has it in every date, birth date included)
# and the one profile basic writes: an export that already holds it must not fail for keeping it.
PLACEHOLDERS = frozenset(
    {"ANONYMOUS", "ANONYMIZED", "ANON", "PHANTOM", "UNKNOWN", "NONE", "NULL", "N/A", "NA", "19000101"}
)


def is_placeholder(value: str) -> bool:
    return value.upper() in PLACEHOLDERS


# Values shorter than MIN_SCAN_LENGTH match any file by chance; they are checked tag by tag only. Shorter
# than ANYWHERE_SCAN_LENGTH, they are searched in the header only (before pixel data) and as whole tokens
# only: a StudyID "204" must not match inside "85204" of a vendor's XML. Longer ones are searched as plain
# bytes everywhere but in the pixel values (which must equal the original's anyway).
# The scrub (scrub.py) replaces by the same rule: what the scan would find is what is replaced.
# Lengths count what `scan_length` counts: an East Asian wide character (a kanji, hanzi or hangul syllable) as two,
# since one such character tells as much as two letters do; the two-character names common in Japan, China and
# Korea are searched for then, one-character ones (like two-letter Latin ones) only tag by tag.
MIN_SCAN_LENGTH = 3
ANYWHERE_SCAN_LENGTH = 6


def scan_length(value: str) -> int:
    if value.isascii():
        return len(value)
    return sum(2 if unicodedata.east_asian_width(character) in "WF" else 1 for character in value)


# Text VRs: free text and short strings, where a description may repeat a known value.
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC"})


def uses_code_extensions(specific_character_set) -> bool:
    """True for ISO 2022 code extensions (Japanese, Korean, Chinese sites: `\\ISO 2022 IR 87`). Such text switches
    character sets by escape sequences, so a value's bytes depend on what stands around it: it can only be
    searched for once decoded."""
    values = [specific_character_set] if isinstance(specific_character_set, str) else specific_character_set or []
    return any(str(value).strip().upper().startswith("ISO 2022") for value in values)


def whole_word(needle: bytes) -> bytes:
    """The regular expression for `needle` as a whole word: no letter or digit may continue it where it begins or
    ends with one. A name in kanji, hanzi or hangul begins and ends with neither, and such text has no spaces
    between words, so it is found inside a longer run of text (`ID7山田太郎`)."""
    before = rb"(?<![A-Za-z0-9])" if needle[:1].isalnum() else b""
    after = rb"(?![A-Za-z0-9])" if needle.rstrip(b"\x00")[-1:].isalnum() else b""  # UTF-16: its last letter
    return before + re.escape(needle) + after


def whole_uid(needle: bytes) -> bytes:
    """The regular expression for a UID as a whole UID: never a part of a longer one."""
    return rb"(?<![0-9.])" + re.escape(needle) + rb"(?![0-9.])"


def whole_uid_in_name(needle: bytes) -> bytes:
    """whole_uid in a file or folder name, where the dots around a UID may not be its own (storescp's
    MR.<SOP Instance UID>.dcm): only a digit, or a dot and a digit, continue it."""
    return rb"(?<![0-9])(?<![0-9]\.)" + re.escape(needle) + rb"(?![0-9])(?!\.[0-9])"


def person_name_parts(name: str) -> list[str]:
    """The component groups of a person name (alphabetic=ideographic=phonetic) and each group's parts
    (family^given^middle^prefix^suffix): every piece a description may repeat on its own."""
    groups = [group.strip() for group in name.split("=")]
    return [piece for group in groups for piece in (group, *(part.strip() for part in group.split("^"))) if piece]


# How a file or folder name may hold a value: in UTF-8, or, where an older system, a drive mounted with another
# character set or a tar made there gave the name its bytes, in Windows' Western code page or Latin-1 (a folder
# `M\xfcller` for the patient Müller), or in the DOS code pages a zip without the UTF-8 flag is meant to use
# (cp437, the zip format's own; cp850, Western Europe's), as Windows' own zip writes them (`M\x81ller`).
NAME_ENCODINGS = ("utf_8", "cp1252", "latin_1", "cp437", "cp850")

# Letters that a name typed without them is spelt with (German first: Müller is filed as MUELLER), and the letters
# Unicode does not decompose into a base letter and a mark.
_ASCII_SPELLING = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_BASE_LETTER = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ł": "l", "Ł": "L",
                              "đ": "d", "Đ": "D", "ß": "ss", "þ": "th", "Þ": "Th"})  # fmt: skip


def name_spellings(value: str) -> tuple[str, ...]:
    """How else a value may be spelt in a file or folder name: a folder typed by hand or by an exporter reads
    MUELLER_HANS or mueller hans for the PatientName Müller^Hans. Its upper, lower and title case and, for letters
    outside ASCII, the German and the plain ASCII transliteration (Mueller, Muller) in each; the value itself and
    spellings too short to search (MIN_SCAN_LENGTH) are left out."""
    if value.upper() == value.lower():  # no letters: a UID, a date, a number; never cached, each file has its own
        return ()
    return _spellings_of_letters(value)


@functools.lru_cache(maxsize=4096)  # a session's files repeat their patient's, institution's, station's values
def _spellings_of_letters(value: str) -> tuple[str, ...]:
    forms = {value}
    if not value.isascii():
        plain = "".join(c for c in unicodedata.normalize("NFKD", value.translate(_BASE_LETTER)) if c.isascii())
        german = value.translate(_ASCII_SPELLING)
        forms |= {german.upper() if value.isupper() else german, plain}  # MÜLLER: MUELLER, not MUeLLER
    spellings = {case(form) for form in forms for case in (str, str.upper, str.lower, str.title)}
    return tuple(sorted(s for s in spellings - {value} if scan_length(s) >= MIN_SCAN_LENGTH))
