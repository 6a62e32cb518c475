"""Shapes of the phantom's cells: head outlines, midpiece and tail centre lines, in um.

The same functions feed the renderer and the written masks, so a mask is exactly the shape that
was drawn. Head outlines are polygons in the *head frame*: +x points forward (direction of
swimming), the origin is the polygon's area centroid (the point that is tracked, and the centre
of every label box). Truth sizes are measured on these polygons: length = max Feret diameter,
width = min Feret diameter (rotating calipers on the convex hull), area = shoelace area.
"""

from __future__ import annotations

import numpy as np

#: Vertices per head outline (a multiple of 4, so ellipse axes are vertices).
HEAD_VERTICES = 64
#: Points per written / drawn tail centre line.
TAIL_POINTS = 25
_TAIL_DENSE = 64


def head_polygon_um(variant: str, length_um: float, width_um: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Outline of a head of the given variant, ``(HEAD_VERTICES, 2)`` um, centroid at the origin.

    ``normal``, ``round``, ``small`` and ``large`` are ellipses with axes ``length_um`` and
    ``width_um``; ``tapered`` narrows toward the rear (pear shape); ``amorphous`` adds smooth
    random radial bumps, so its Feret sizes differ from the drawn axes (measure, don't assume).
    """
    u = np.linspace(0.0, 2.0 * np.pi, HEAD_VERTICES, endpoint=False)
    a, b = length_um / 2.0, width_um / 2.0
    x, y = a * np.cos(u), b * np.sin(u)
    if variant == "tapered":
        # full width at the front (u=0), 40 % narrower at the rear (u=pi) where the midpiece starts
        y = y * (1.0 - 0.4 * (1.0 - np.cos(u)) / 2.0)
    elif variant == "amorphous":
        r = np.ones_like(u)
        for k in (2, 3, 4):
            r += rng.uniform(0.05, 0.12) * np.cos(k * u + rng.uniform(0, 2 * np.pi))
        x, y = x * r, y * r
    poly = np.stack([x, y], axis=1)
    return poly - polygon_centroid(poly)


def polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygon_centroid(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    a = cross.sum() / 2.0
    return np.array([((x + xn) * cross).sum() / (6 * a), ((y + yn) * cross).sum() / (6 * a)])


def feret_diameters(poly: np.ndarray) -> tuple[float, float]:
    """``(max Feret, min Feret)`` of a polygon (same unit as ``poly``)."""
    d = poly[:, None, :] - poly[None, :, :]
    max_f = float(np.sqrt((d ** 2).sum(-1)).max())
    hull = _convex_hull(poly)
    edges = np.roll(hull, -1, axis=0) - hull
    normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    proj = hull @ normals.T
    min_f = float((proj.max(axis=0) - proj.min(axis=0)).min())
    return max_f, min_f


def _convex_hull(pts: np.ndarray) -> np.ndarray:
    """Monotone-chain convex hull (counter-clockwise, no repeated end point)."""
    p = pts[np.lexsort((pts[:, 1], pts[:, 0]))].tolist()

    def half(seq):
        out: list = []
        for q in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (q[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (q[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(q)
        return out

    lower, upper = half(p), half(p[::-1])
    return np.array(lower[:-1] + upper[:-1])


def rotate(points: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
    """Rotate ``(..., N, 2)`` points by ``angle`` radians (one angle, or one per leading row)."""
    c, s = np.cos(angle), np.sin(angle)
    c = np.asarray(c)[..., None]
    s = np.asarray(s)[..., None]
    x, y = points[..., 0], points[..., 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1)


def tail_wave_um(length_um: np.ndarray, wavelength_um: np.ndarray, amp_base_um: np.ndarray,
                 amp_tip_um: np.ndarray, beat_hz: np.ndarray, phase_rad: np.ndarray,
                 t_s: float) -> np.ndarray:
    """Tail centre lines of ``n`` cells at time ``t_s``, ``(n, TAIL_POINTS, 2)`` um, tail frame.

    The tail frame starts at the end of the midpiece with +x pointing away from the head. The
    wave is ``y(x, t) = A(x) sin(k x - 2 pi f t + phase)``, ``A`` growing linearly from
    ``amp_base`` to ``amp_tip``; the curve is cut where its arc length reaches ``length_um`` and
    resampled at equal arc-length steps, so the tail's true length is exactly ``length_um``.
    """
    n = len(length_um)
    frac = np.linspace(0.0, 1.0, _TAIL_DENSE)
    x = frac[None, :] * length_um[:, None]
    amp = amp_base_um[:, None] + (amp_tip_um - amp_base_um)[:, None] * frac[None, :]
    k = 2.0 * np.pi / wavelength_um
    y = amp * np.sin(k[:, None] * x - 2.0 * np.pi * beat_hz[:, None] * t_s + phase_rad[:, None])
    seg = np.hypot(np.diff(x, axis=1), np.diff(y, axis=1))
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(seg, axis=1)], axis=1)
    target = np.linspace(0.0, 1.0, TAIL_POINTS)[None, :] * length_um[:, None]
    idx = np.clip((cum[:, None, :] <= target[:, :, None]).sum(-1) - 1, 0, _TAIL_DENSE - 2)
    rows = np.arange(n)[:, None]
    c0, c1 = cum[rows, idx], cum[rows, idx + 1]
    w = np.clip((target - c0) / np.maximum(c1 - c0, 1e-12), 0.0, 1.0)
    px = x[rows, idx] + w * (x[rows, idx + 1] - x[rows, idx])
    py = y[rows, idx] + w * (y[rows, idx + 1] - y[rows, idx])
    return np.stack([px, py], axis=-1)


def coiled_tail_um(length_um: float, turns: float, wiggle_rad: float) -> np.ndarray:
    """A coiled tail (``TAIL_POINTS`` x 2 um, tail frame): a short straight part, then a loop.

    The curve has arc length ``length_um``; it turns through ``turns`` full circles (> 1, so
    a morphology check sees more than 360 degrees of turning).
    """
    s = np.linspace(0.0, length_um, TAIL_POINTS)
    straight = 0.2 * length_um
    radius = (length_um - straight) / (2.0 * np.pi * turns)
    heading = np.where(s <= straight, 0.0, (s - straight) / radius) + wiggle_rad
    ds = np.diff(s)
    # integrate the heading exactly on each step (midpoint heading is exact for a circle arc
    # up to the chord factor, which is what a polyline of these vertices has anyway)
    mid = 0.5 * (heading[1:] + heading[:-1])
    pts = np.zeros((TAIL_POINTS, 2))
    pts[1:, 0] = np.cumsum(ds * np.cos(mid))
    pts[1:, 1] = np.cumsum(ds * np.sin(mid))
    return pts


def inset_polygon(poly: np.ndarray, d: float) -> np.ndarray:
    """Move each vertex of counter-clockwise polygon(s) ``(..., V, 2)`` inward by ``d``.

    ``cv2.fillPoly`` also fills every pixel an edge touches, which grows a shape by about half
    a pixel of the grid it is drawn on; drawing the outline inset by ``0.46`` grid pixels makes
    the filled area match the true area to within about 0.5 % (measured on head ellipses at
    4x supersampling), so the rendered head is the size the truth says.
    """
    t = np.roll(poly, -1, axis=-2) - np.roll(poly, 1, axis=-2)
    n = np.stack([t[..., 1], -t[..., 0]], axis=-1)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    return poly - d * n


#: Inset (in pixels of the grid a shape is filled on) that cancels cv2.fillPoly's edge growth.
FILL_INSET = 0.46


def polyline_length(points: np.ndarray) -> float:
    return float(np.hypot(*np.diff(points, axis=0).T).sum())
