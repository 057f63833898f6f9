"""What an export is made of: the reading's typed results (`medview.core.results`) and the
reader's key images and measurements, never widgets, so the headless command and the window
export the same bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medview.core.results import Classification, Segmentation
from medview.report.model import Report


@dataclass(frozen=True)
class KeyImage:
    """A slice the user marked for the report: ``view`` is "axial", "coronal", "sagittal"
    or "native"; ``index`` the slice number in that view. A rendering of the 3-D view has
    ``view`` "3d", its number among the renderings as ``index``, and the picture itself
    (PNG bytes) as ``picture``."""

    view: str
    index: int
    caption: str = ""
    picture: bytes = b""

    @property
    def title(self) -> str:
        where = "3-D rendering" if self.view == "3d" else f"{self.view} slice {self.index + 1}"
        return where + (f": {self.caption}" if self.caption else "")


@dataclass(frozen=True)
class ExportOptions:
    deidentify: bool = False
    zip: bool = False
    segmentation_type: str = "BINARY"  # or "FRACTIONAL"
    window: tuple[float, float] | None = None  # (center, width) for key images
    validate: bool = True  # run dciodvfy on every DICOM object when it is installed
    # a de-identified bundle carries the report's narrative (free text, which the profile
    # does not de-identify) only when the user confirmed it holds no identifiers
    narrative_confirmed: bool = False


@dataclass
class ExportContent:
    """Everything one report bundle shows. ``measurements`` are `Measurement` dicts (the study
    database's format); ``risk`` is ``StudyDatabase.risk_results(study_uid)``."""

    segmentation: Segmentation | None = None
    measurements: list[dict[str, Any]] = field(default_factory=list)
    classifications: list[Classification] = field(default_factory=list)
    risk: dict[str, dict[str, Any]] = field(default_factory=dict)
    key_images: list[KeyImage] = field(default_factory=list)
    report: Report | None = None  # the reader's narrative report
