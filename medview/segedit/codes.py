"""What a reader draws, coded: a pick list of common anatomy and findings with their SNOMED CT
codes (the SEG's segmented property type), and the colours new segments take in turn."""

from __future__ import annotations

from typing import NamedTuple

from medview.core.colours import PALETTE, new_colour

__all__ = ["PALETTE", "PICK_LIST", "Pick", "new_colour", "pick"]


class Pick(NamedTuple):
    name: str
    code: str  # SNOMED CT concept id ("" for none)
    meaning: str
    finding: bool  # a finding (category "Morphologically abnormal structure"), else anatomy

    def codes(self) -> dict[str, object]:
        """The segment fields this pick sets."""
        return {"snomed_code": self.code, "snomed_meaning": self.meaning, "finding": self.finding}


PICK_LIST = (
    Pick("Lesion", "108369006", "Neoplasm", True),
    Pick("Nodule", "27925004", "Nodule", True),
    Pick("Mass", "4147007", "Mass", True),
    Pick("Cyst", "441457006", "Cyst", True),
    Pick("Lung", "39607008", "Lung", False),
    Pick("Liver", "10200004", "Liver", False),
    Pick("Kidney", "64033007", "Kidney", False),
    Pick("Spleen", "78961009", "Spleen", False),
    Pick("Heart", "80891009", "Heart", False),
    Pick("Brain", "12738006", "Brain", False),
    Pick("Bone", "272673000", "Bone", False),
    Pick("Lymph node", "59441001", "Lymph node", False),
    Pick("Other (no code)", "", "", False),
)


def pick(name: str) -> Pick | None:
    return next((p for p in PICK_LIST if p.name == name), None)
