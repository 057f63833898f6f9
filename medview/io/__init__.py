"""DICOM in: indexing, series assembly, pixel decoding, volume loading, the study database."""

import pydicom.config as _pydicom_config

# Untrusted files carry invalid values all the time; MedView reports what matters itself.
_pydicom_config.settings.reading_validation_mode = _pydicom_config.IGNORE
