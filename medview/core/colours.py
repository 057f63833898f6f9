"""The colours segments take when nobody chose one: a model's labels without colours in its
manifest, a label map exported without a table, a segment the reader adds."""

from __future__ import annotations

# distinct colours for new segments (a colour already in the table is skipped)
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)


def new_colour(used: set[tuple[int, int, int]]) -> tuple[int, int, int]:
    """A colour for a new segment, unlike those ``used`` (RGB distance over 100 when one is
    left in the palette)."""

    def far(c: tuple[int, int, int]) -> bool:
        return all(sum((a - b) ** 2 for a, b in zip(c, u, strict=True)) > 100**2 for u in used)

    return next((c for c in PALETTE if far(c)), PALETTE[len(used) % len(PALETTE)])
