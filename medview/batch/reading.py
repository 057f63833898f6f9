"""A pipeline from a reading: the series' modality, the models whose results the reader kept
(click models are left out: a cohort has no one to click), the risk models scored, and the
exports a reader makes. What "Save reading as pipeline..." writes; the researcher edits it."""

from __future__ import annotations

from typing import Any

from medview.batch.pipeline import ModelStep, Pipeline, RiskStep, Rule
from medview.core.errors import PipelineError


def pipeline_from_reading(session: Any, name: str = "") -> Pipeline:
    """``session`` (a `StudySession`) as a pipeline; PipelineError when it ran no model."""
    from medview.core.errors import MedviewError
    from medview.inference.registry import find_model

    series = session.series
    if series is None:
        raise PipelineError("open a series and run a model first")
    models: list[ModelStep] = []
    min_images = 1
    results = [session.segmentation, session.classification]
    for result in results:
        prov = getattr(result, "provenance", None)
        if prov is None or any(m.id == prov.model_id for m in models):
            continue
        try:
            manifest = find_model(prov.model_id)
        except MedviewError:
            continue  # a model no longer installed: the cohort could not run it
        if manifest.takes_click:
            continue
        min_images = max(min_images, manifest.domain.min_slices)
        models.append(ModelStep(prov.model_id, modality=series.modality.upper()))
    risk = tuple(RiskStep(model_id) for model_id in sorted(session.risk))
    if not models and not risk:
        raise PipelineError(
            "this reading has no model result or risk score to repeat: run a model first"
        )
    rule = Rule(modality=series.modality.upper(), min_images=min_images)
    return Pipeline(
        name or f"{series.modality} reading",
        (rule,),
        tuple(models),
        risk,
        exports=("summary", "nifti", "bundle"),
    )
