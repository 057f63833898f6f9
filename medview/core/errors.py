"""Typed errors. Every failure a user can meet is a `MedviewError` with an actionable message."""

from __future__ import annotations

from pathlib import Path


class MedviewError(Exception):
    """Base class. ``path`` names the file (or folder) concerned, when there is one."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class NotDicomError(MedviewError):
    """The file is not DICOM (no preamble/meta and no parseable dataset)."""


class DicomReadError(MedviewError):
    """The file looks like DICOM but its header cannot be read (truncated, corrupt ...)."""


class NotAnImageError(MedviewError):
    """A valid DICOM object without pixel data (SR, RT plan, presentation state ...)."""


class UnsupportedError(MedviewError):
    """Valid DICOM that MedView cannot show (e.g. a transfer syntax with no decoder)."""


class ResourceLimitError(MedviewError):
    """Declared sizes exceed a safety cap; refused before any allocation."""


class DecodeError(MedviewError):
    """Pixel data could not be decoded (corrupt stream, decoder crash)."""


class ArchiveError(MedviewError):
    """A zip archive or DICOMDIR is hostile or unreadable."""


class SeriesAssemblyError(MedviewError):
    """A series cannot be stacked into a volume without being wrong."""


class DatabaseError(MedviewError):
    """The study database cannot be opened or migrated."""


class CancelledError(MedviewError):
    """The user cancelled the operation."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


class ModelError(MedviewError):
    """A model package or bundle is invalid or refused (the message says why)."""


class RiskModelError(MedviewError):
    """A tabular risk model package is invalid or unknown (the message says why)."""


class RiskInputError(MedviewError):
    """Risk-model input values cannot be used (the message names the feature and why)."""


class InferenceError(MedviewError):
    """Running a model failed (the message says what happened)."""


class ExportError(MedviewError):
    """A report, DICOM object or de-identified copy could not be written."""


class PacsError(MedviewError):
    """A PACS node could not be reached, refused us, or answered with a failure status."""


class DerivedObjectError(MedviewError):
    """A SEG, RTSTRUCT or SR that cannot be opened onto its series (with the reason)."""


class ReportError(MedviewError):
    """A report or template that cannot be taken: too long, control characters, malformed
    template data, an edit of a signed report."""


class PipelineError(MedviewError):
    """A cohort pipeline file that cannot be run, refused before any work starts; ``line`` is
    the line at fault (1-based; 0 when the fault is not on one line)."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int = 0) -> None:
        super().__init__(message, path=path)
        self.line = line

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.path and self.line else self.path
        return f"{where}: {self.message}" if where else self.message
