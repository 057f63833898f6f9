"""DICOM in: indexing, series assembly, pixel decoding, volume loading, the study database.

pydicom is imported through `medview.io.dicom`, only by what needs it (see there)."""
