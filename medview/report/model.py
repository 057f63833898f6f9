"""The report a reader writes and signs: five sections of plain text with live fields, a status
(preliminary until signed, then final and read-only) and dated addenda that keep the original.

Text is data: it is stored, rendered and exported as characters, never interpreted (no
markup, no format strings, no evaluation). What cannot be stored intact is refused with a
message: a section over `MAX_SECTION` characters, control characters other than tab and line
feed. Carriage returns are line ends and become line feeds.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medview.core.errors import ReportError

SECTIONS = ("clinical", "technique", "comparison", "findings", "impression")
TITLES = {
    "clinical": "Clinical information",
    "technique": "Technique",
    "comparison": "Comparison",
    "findings": "Findings",
    "impression": "Impression",
}
PRELIMINARY, FINAL = "preliminary", "final"
# a real report's section is a few thousand characters; 200,000 is a hundred pages of PDF
MAX_SECTION = 200_000
MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
# a live field: {{kind}} or {{kind:argument}}
FIELD = re.compile(r"\{\{\s*([a-z][a-z_]*)(?:\s*:\s*([^{}\n]{1,120}?))?\s*\}\}")


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def clean_text(text: str, what: str, limit: int = MAX_SECTION) -> str:
    """``text`` as it will be stored, or `ReportError` saying why it cannot be."""
    if not isinstance(text, str):
        raise ReportError(f"{what}: not text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > limit:
        raise ReportError(
            f"{what} holds {len(text):,} characters; at most {limit:,} are kept. "
            "Shorten it or attach the text as a document."
        )
    bad = _CONTROL.search(text)
    if bad is not None:
        raise ReportError(
            f"{what} holds a control character (U+{ord(bad.group()):04X}) at position "
            f"{bad.start() + 1}; remove it (only tabs and line breaks are kept)"
        )
    return text


def resolve(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each live field replaced by its value now; a field with no value says
    so in brackets (never silently empty)."""

    def one(m: re.Match[str]) -> str:
        kind, arg = m.group(1), (m.group(2) or "").strip()
        if kind == "segment":  # segment names match in any case
            arg = arg.lower()
        key = f"{kind}:{arg}" if arg else kind
        if key in values:
            return values[key]
        return f"[{key}: none]" if kind in KINDS else f"[unknown field {key}]"

    return FIELD.sub(one, text)


# the kinds of live field (`medview.report.fields` gives their values)
KINDS = ("measurements", "measurement", "lesions", "lesion", "segments", "segment", "ai", "risk")


def _signer(reader: str, credentials: str, what: str) -> tuple[str, str]:
    """The signing reader's name (required) and credentials, as stored."""
    reader = clean_text(reader, "Reader name", MAX_NAME).strip()
    if not reader:
        raise ReportError(f"{what} is signed by a named reader: set your name in Preferences")
    return reader, clean_text(credentials, "Credentials", MAX_NAME).strip()


@dataclass
class Addendum:
    date: str
    reader: str
    credentials: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {
            "date": self.date,
            "reader": self.reader,
            "credentials": self.credentials,
            "text": self.text,
        }


@dataclass
class Report:
    """One study's report. While preliminary, ``sections`` hold the text as written, live
    fields included; on signing they are resolved once and frozen."""

    template_id: str = "generic"
    template_name: str = "Generic"
    sections: dict[str, str] = field(default_factory=lambda: dict.fromkeys(SECTIONS, ""))
    status: str = PRELIMINARY
    reader: str = ""
    credentials: str = ""
    organization: str = ""  # the reader's institution (the SR's Verifying Organization)
    created: str = field(default_factory=now)
    signed: str = ""  # date and time of signing
    addenda: list[Addendum] = field(default_factory=list)
    series_key: str = ""  # the series it was written on

    @property
    def final(self) -> bool:
        return self.status == FINAL

    def set_section(self, name: str, text: str) -> None:
        if name not in SECTIONS:
            raise ReportError(f"no report section {name!r}")
        if self.final:
            raise ReportError("the report is signed; changes go into an addendum")
        self.sections[name] = clean_text(text, TITLES[name])

    def text(self, values: Mapping[str, str]) -> dict[str, str]:
        """The sections as they read now: live fields resolved (a signed report's are
        already frozen)."""
        if self.final:
            return dict(self.sections)
        return {k: resolve(v, values) for k, v in self.sections.items()}

    def sign(
        self,
        reader: str,
        credentials: str,
        values: Mapping[str, str],
        when: str = "",
        organization: str = "",
    ) -> None:
        """Freeze the fields and make the report final (read-only)."""
        if self.final:
            raise ReportError("the report is already signed")
        reader, credentials = _signer(reader, credentials, "a report")
        organization = clean_text(organization, "Institution", MAX_NAME).strip()
        self.sections = self.text(values)
        self.reader, self.credentials, self.organization = reader, credentials, organization
        self.signed = when or now()
        self.status = FINAL

    def add_addendum(
        self, text: str, reader: str, credentials: str, values: Mapping[str, str], when: str = ""
    ) -> Addendum:
        """A dated addendum to a signed report; the original stays as signed."""
        if not self.final:
            raise ReportError("an addendum is added to a signed report; edit the report instead")
        text = clean_text(text, "The addendum").strip()
        if not text:
            raise ReportError("the addendum is empty")
        reader, credentials = _signer(reader, credentials, "an addendum")
        a = Addendum(when or now(), reader, credentials, resolve(text, values))
        self.addenda.append(a)
        return a

    # -- kept as JSON with the study --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "medview-report/1",
            "template_id": self.template_id,
            "template_name": self.template_name,
            "sections": dict(self.sections),
            "status": self.status,
            "reader": self.reader,
            "credentials": self.credentials,
            "organization": self.organization,
            "created": self.created,
            "signed": self.signed,
            "addenda": [a.to_dict() for a in self.addenda],
            "series_key": self.series_key,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Report:
        try:
            sections = {k: str(d["sections"].get(k, "")) for k in SECTIONS}
            status = str(d.get("status", PRELIMINARY))
            if status not in (PRELIMINARY, FINAL):
                raise ReportError(f"unknown report status {status!r}")
            return cls(
                template_id=str(d.get("template_id", "generic")),
                template_name=str(d.get("template_name", "")),
                sections=sections,
                status=status,
                reader=str(d.get("reader", "")),
                credentials=str(d.get("credentials", "")),
                organization=str(d.get("organization", "")),
                created=str(d.get("created", "")),
                signed=str(d.get("signed", "")),
                addenda=[
                    Addendum(**{k: str(a[k]) for k in ("date", "reader", "credentials", "text")})
                    for a in d.get("addenda", [])
                ],
                series_key=str(d.get("series_key", "")),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ReportError(f"a kept report cannot be read: {e}") from e
