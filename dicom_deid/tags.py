"""The one place that lists which DICOM attributes the workflow replaces, removes and scans for.

Source: ../shared/docs/tags.md (the data2bids "Imaging Directory Setup" specification).
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
