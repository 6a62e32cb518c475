"""Tile geometry and fusion: every pixel covered, no duplicate at tile borders, no lost head."""

import numpy as np
import pytest

from spermtrack.detect.slicing import box_ios, fuse_boxes, tile_grid, tile_origins


@pytest.mark.parametrize("h, w, tile, overlap", [(480, 640, 320, 0.15), (480, 640, 256, 0.2), (100, 90, 320, 0.1),
                                                 (481, 641, 160, 0.1)])
def test_tiles_cover_frame_inside_with_overlap(h, w, tile, overlap):
    tiles = tile_grid(h, w, tile, overlap)
    cover = np.zeros((h, w), int)
    for x0, y0, x1, y1 in tiles:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert (x1 - x0) == min(tile, w) and (y1 - y0) == min(tile, h)
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1
    for axis_len in (w, h):
        starts = tile_origins(axis_len, tile, overlap)
        if len(starts) > 1:
            assert (np.diff(starts) <= tile - np.ceil(overlap * tile)).all()


def test_every_head_lies_whole_in_some_tile():
    rng = np.random.default_rng(0)
    tiles = tile_grid(480, 640, 320, 0.15)
    for _ in range(2000):
        c = rng.uniform([0, 0], [640, 480])
        box = np.r_[np.clip(c - 12, 0, None), np.minimum(c + 12, [640, 480])]
        inside = ((tiles[:, 0] <= box[0]) & (tiles[:, 1] <= box[1]) & (tiles[:, 2] >= box[2]) & (tiles[:, 3] >= box[3]))
        assert inside.any(), box


def test_ios_of_partial_box():
    full = np.array([[100, 100, 120, 120]])
    half = np.array([[110, 100, 120, 120]])
    assert box_ios(full, half)[0, 0] == pytest.approx(1.0)
    assert box_ios(full, np.array([[200, 200, 210, 210]]))[0, 0] == 0


def test_fusion_restores_head_cut_by_tile_border_and_keeps_neighbours():
    # head at x 314..330 seen whole by one tile and cut at x=320 by another; a second head 14 px away
    xyxy = np.array([[314, 50, 330, 66], [314, 50, 320, 66], [344, 50, 360, 66], [344, 50, 360, 66]], float)
    conf = np.array([0.9, 0.5, 0.8, 0.7])
    cls = np.zeros(4, int)
    b, c, k = fuse_boxes(xyxy, conf, cls)
    assert len(b) == 2
    np.testing.assert_allclose(sorted(b[:, 0]), [314, 344])
    np.testing.assert_allclose(sorted(c), [0.8, 0.9])
    # a cluster box (class 1) overlapping a head is not fused with it
    b2, _, _ = fuse_boxes(np.r_[xyxy[:1], [[310, 45, 340, 70]]], [0.9, 0.9], [0, 1])
    assert len(b2) == 2
