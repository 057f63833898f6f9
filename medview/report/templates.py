"""Report templates: JSON data, never code.

A template (``resources/report-templates/*.json``, and the user's own in the data folder's
``report-templates/``) names the modalities and body parts it suits, default text for each
section (live fields such as ``{{lesions}}`` allowed) and pick lists: phrases the reader
inserts into a section with one click. The format, after IHE MRRT's sections and pick lists::

    {"format": "medview-report-template/1", "id": "ct-chest", "name": "CT chest",
     "modalities": ["CT"], "body_parts": ["CHEST", "LUNG"],
     "sections": {"findings": "Lungs: ...", "impression": "..."},
     "choices": {"findings": ["No pleural effusion.", ...]}}

Text is taken as characters: markup in a template is shown as written, never interpreted.
A malformed template is listed as refused with its reason; the others still load.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.core.errors import ReportError
from medview.core.paths import data_dir
from medview.core.shipped import shipped
from medview.report.model import SECTIONS, clean_text

log = logging.getLogger(__name__)

FORMAT = "medview-report-template/1"


def shipped_folder() -> Path:
    return shipped("resources") / "report-templates"


MAX_FILE = 512 * 1024
MAX_CHOICES = 200


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    description: str = ""
    sections: dict[str, str] = field(default_factory=dict)
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""  # "shipped" or "user"

    def suits(self, modality: str, body_part: str) -> int:
        """How well it suits a series: 2 modality and body part, 1 modality, 0 neither."""
        if self.modalities and modality.upper() not in self.modalities:
            return 0
        if self.body_parts and body_part.upper() in self.body_parts:
            return 2
        return 1 if self.modalities else 0


def user_folder() -> Path:
    return data_dir() / "report-templates"


def _text(value: Any, what: str, limit: int = 20_000) -> str:
    if not isinstance(value, str):
        raise ReportError(f"{what} is not text")
    return clean_text(value, what, limit)


def parse_template(data: Any, source: str = "") -> Template:
    """A template from its JSON data, or `ReportError` naming what is wrong."""
    if not isinstance(data, dict):
        raise ReportError("a template is a JSON object")
    if data.get("format") != FORMAT:
        raise ReportError(f"not a report template (format should be {FORMAT!r})")
    tid = _text(data.get("id"), "the template's id", 80).strip()
    if not tid or not all(c.isalnum() or c in "-_." for c in tid):
        raise ReportError("a template id is letters, digits, '-', '_' and '.'")
    name = _text(data.get("name", tid), "the template's name", 120).strip() or tid
    sections_raw = data.get("sections", {})
    choices_raw = data.get("choices", {})
    if not isinstance(sections_raw, dict) or not isinstance(choices_raw, dict):
        raise ReportError("sections and choices are JSON objects keyed by section")
    unknown = (set(sections_raw) | set(choices_raw)) - set(SECTIONS)
    if unknown:
        raise ReportError(f"unknown section(s) {sorted(unknown)}; sections are {list(SECTIONS)}")
    sections = {k: _text(v, f"section {k}") for k, v in sections_raw.items()}
    choices: dict[str, tuple[str, ...]] = {}
    for k, items in choices_raw.items():
        if not isinstance(items, list) or len(items) > MAX_CHOICES:
            raise ReportError(f"choices for {k} are a list of at most {MAX_CHOICES} phrases")
        choices[k] = tuple(_text(v, f"a choice for {k}", 2_000) for v in items)

    def words(key: str) -> tuple[str, ...]:
        v = data.get(key, [])
        if not isinstance(v, list):
            raise ReportError(f"{key} is a list")
        return tuple(_text(x, key, 40).strip().upper() for x in v)

    return Template(
        tid,
        name,
        words("modalities"),
        words("body_parts"),
        _text(data.get("description", ""), "the description", 2_000),
        sections,
        choices,
        source,
    )


def load_template(path: Path, source: str = "") -> Template:
    try:
        if path.stat().st_size > MAX_FILE:
            raise ReportError(f"a template file is at most {MAX_FILE // 1024} KB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"cannot read the template: {e}", path=path) from e
    try:
        return parse_template(data, source)
    except ReportError as e:
        raise ReportError(str(e), path=path) from e


@dataclass
class Templates:
    """The shipped and the user's templates by id (a user's template of the same id is the
    one used), and the files refused, with their reasons."""

    by_id: dict[str, Template]
    refused: list[tuple[str, str]]  # (file name, reason)

    def best(self, modality: str, body_part: str = "") -> Template:
        ranked = sorted(
            self.by_id.values(),
            key=lambda t: (-t.suits(modality, body_part), t.id != "generic", t.id),
        )
        return ranked[0]


def templates(user: Path | None = None) -> Templates:
    by_id: dict[str, Template] = {}
    refused: list[tuple[str, str]] = []
    folders = [(shipped_folder(), "shipped"), (user if user is not None else user_folder(), "user")]
    for folder, source in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                t = load_template(path, source)
            except ReportError as e:
                log.warning("report template %s refused: %s", path.name, e)
                refused.append((path.name, str(e)))
                continue
            by_id[t.id] = t
    if "generic" not in by_id:
        by_id["generic"] = Template("generic", "Generic", source="built in")
    return Templates(by_id, refused)
