"""pydicom, set up for untrusted files: ``from medview.io.dicom import pydicom``.

Importing pydicom costs about 0.25 s, so `medview.io` does not import it up front; the modules
that need it import it from here (the header fallback, archives, decoding, export, PACS), and
so always get it with this setting.
"""

import pydicom
import pydicom.config

# Untrusted files carry invalid values all the time; MedView reports what matters itself.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

__all__ = ["pydicom"]
