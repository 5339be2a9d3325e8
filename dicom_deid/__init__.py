"""De-identify DICOM sessions laid out for data2bids: unpack, anonymize, strip, verify."""
