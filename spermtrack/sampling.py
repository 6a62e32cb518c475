"""Small numba helpers shared by the image-analysis kernels."""

from __future__ import annotations

from numba import njit


@njit(cache=True, fastmath=True)
def bilinear(m, x, y, outside):
    """Bilinear sample of the 2-D array ``m`` at ``(x, y)`` (column, row); ``outside`` beyond
    the last full pixel cell."""
    h, w = m.shape
    if x < 0.0 or y < 0.0 or x > w - 1.001 or y > h - 1.001:
        return outside
    x0 = int(x)
    y0 = int(y)
    fx = x - x0
    fy = y - y0
    return ((m[y0, x0] * (1 - fx) + m[y0, x0 + 1] * fx) * (1 - fy)
            + (m[y0 + 1, x0] * (1 - fx) + m[y0 + 1, x0 + 1] * fx) * fy)
