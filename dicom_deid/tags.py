"""The one place that lists which DICOM attributes the workflow replaces, removes and scans for.

Source and specification: docs/tags.md (the data2bids "Imaging Directory Setup" rule, DICOM PS3.6 tags).
"""

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

# May be kept (config `keep`) only with `allow_keep_identifying: true`: they identify the patient directly.
KEEP_NEEDS_OVERRIDE = (*REMOVED, "PatientID")
