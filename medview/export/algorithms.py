"""DICOM Algorithm Identification of an AI segment: the segment's own model (a click model's
nodule) or the segmentation's."""

from __future__ import annotations

from typing import Any

from medview.core.results import Provenance, Segment


def algorithm_identification(algo: Provenance | None, segment: Segment | None = None) -> Any:
    """The model of ``segment`` when it names its own (a click model's nodule), else ``algo``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if segment is not None and segment.algorithm_name:
        algo = Provenance(segment.algorithm_name, segment.algorithm_name, segment.algorithm_version)
    if algo is None:
        return None
    return hd.AlgorithmIdentificationSequence(
        name=algo.name[:64],
        family=codes.cid7162.ArtificialIntelligence,
        version=algo.version[:64] or "unknown",
        source=f"MedView model {algo.model_id}"[:64],
        parameters={"weights_sha256": algo.weights_sha256[:64]} if algo.weights_sha256 else None,
    )
