"""The verifier: checks de-identified output against its input; imports nothing of the anonymizing side.

files.py   per file, run by the anonymize stage's worker on each file it wrote (pydicom)
session.py per session, run by the publish stage before anything enters the output (no pydicom unless needed)
Messages name files by their output path and never quote a value from a file.
"""

FILE_CHECKS = (
    "readable",
    "transfer_syntax_unchanged",
    "pixel_data_unchanged",
    "replaced_tags_changed",
    "removed_tags_absent",
    "no_original_values_in_bytes",
    "policy_held",
    "profile_held",  # profile basic: every attribute of Table E.1-1 the input held got its action
)
CHECKS = ("every_instance_once", *FILE_CHECKS)
