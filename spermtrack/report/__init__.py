"""What a person looks at: plots (:mod:`.plots`), the annotated video (:mod:`.video`) and the
self-contained HTML report (:mod:`.html`). Grade colours are shared by all three (:data:`GRADE_COLORS`)."""

from __future__ import annotations

#: Okabe-Ito colours (readable with colour-blindness), per grade, as ``#rrggbb``.
GRADE_COLORS: dict[str, str] = {
    "rapid_progressive": "#0072B2",
    "slow_progressive": "#56B4E9",
    "non_progressive": "#E69F00",
    "immotile": "#D55E00",
    "not_graded": "#999999",
}

#: Short labels used in legends (WHO 2021 letters).
GRADE_LABELS: dict[str, str] = {
    "rapid_progressive": "a: rapid progressive",
    "slow_progressive": "b: slow progressive",
    "non_progressive": "c: non-progressive",
    "immotile": "d: immotile",
    "not_graded": "not graded (too short)",
}


def grade_bgr(grade: str) -> tuple[int, int, int]:
    """The grade's colour as an OpenCV BGR tuple."""
    h = GRADE_COLORS.get(str(grade), GRADE_COLORS["not_graded"]).lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return b, g, r
