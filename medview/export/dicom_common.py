"""What MedView's DICOM objects share: the attributes copied from the source (patient and
study), and MedView as the SR observer device."""

from __future__ import annotations

from typing import Any

from medview import __version__

MANUFACTURER = "MedView"
# copied from the source: patient and study (PS3.3 C.7.1.1, C.7.2.1)
PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
)


def device_observer() -> Any:
    """MedView as a TID 1004 device observer (highdicom's `ObserverContext`)."""
    import highdicom.sr as sr
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    return sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(),
            name="MedView",
            manufacturer_name=MANUFACTURER,
            model_name=f"MedView {__version__}",
        ),
    )
