"""Writing things out: DICOM series, NIfTI (reports, SEG/SR and de-identification later)."""
