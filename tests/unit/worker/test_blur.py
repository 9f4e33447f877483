"""Privacy regions: where a region lands on the output frame, and the
filter chain that hides it for its time range."""

from __future__ import annotations

import pytest

from mediaflow_api.tasks import PrivacyRegion
from mediaflow_worker.ffmpeg.blur import Box, hide_filter, privacy_filters, region_box

pytestmark = pytest.mark.unit


def _region(**fields: object) -> PrivacyRegion:
    return PrivacyRegion.model_validate(
        {"left": "0", "top": "0", "width": "10", "height": "10", **fields}
    )


def test_pixel_regions_are_in_source_coordinates_scaled_to_the_output() -> None:
    # 1920x1080 source, 640x360 output: a third.
    region = _region(left="300", top="150", width="300", height="90")
    assert region_box(region, (1920, 1080), (640, 360)) == Box(100, 50, 100, 30)


def test_percent_regions_and_odd_edges_round_outwards_to_even() -> None:
    region = _region(left="10%", top="10%", width="25%", height="25%")
    # 10% of 322 = 32.2 -> 32; right edge 112.7 -> 114
    assert region_box(region, (322, 242), (322, 242)) == Box(32, 24, 82, 62)


def test_regions_are_clipped_to_the_frame_or_left_out() -> None:
    assert region_box(
        _region(left="300", top="200", width="100", height="100"), (320, 240), (320, 240)
    ) == Box(300, 200, 20, 40)
    assert region_box(_region(left="320", top="0"), (320, 240), (320, 240)) is None
    assert region_box(_region(left="95%", top="0", width="50%"), (320, 240), (160, 120)) == Box(
        152, 0, 8, 6
    )


def test_blur_and_mosaic_strength_default_from_the_region_size() -> None:
    box = Box(0, 0, 120, 60)
    assert hide_filter(_region(), box) == "gblur=sigma=10:steps=3"
    assert hide_filter(_region(strength=3), box) == "gblur=sigma=3:steps=3"
    # 60 / 8 -> blocks of 8 px: 15 x 8 blocks
    assert hide_filter(_region(style="mosaic"), box) == (
        "scale=15:8:flags=area,scale=120:60:flags=neighbor"
    )
    assert hide_filter(_region(style="mosaic", strength=100), box).startswith("scale=1:1:")


def test_each_region_is_cropped_hidden_and_laid_back_in_its_time_range() -> None:
    regions = [
        _region(left="10", top="20", width="40", height="30", start=1, end=2.5),
        _region(left="999", top="0"),  # outside: left out
        _region(left="0", top="0", width="20", height="20", style="mosaic", start=3),
    ]
    chains, label = privacy_filters(regions, (320, 240), (320, 240), "base")
    assert label == "pv2out"
    assert chains == [
        "[base]split=2[pv0base][pv0src]",
        "[pv0src]crop=40:30:10:20,gblur=sigma=5:steps=3[pv0]",
        "[pv0base][pv0]overlay=x=10:y=20:enable='between(t,1.000,2.500)'[pv0out]",
        "[pv0out]split=2[pv2base][pv2src]",
        "[pv2src]crop=20:20:0:0,scale=5:5:flags=area,scale=20:20:flags=neighbor[pv2]",
        "[pv2base][pv2]overlay=x=0:y=0:enable='between(t,3.000,10000000.000)'[pv2out]",
    ]
    assert privacy_filters([], (320, 240), (320, 240), "base") == ([], "base")


def test_regions_follow_the_picture_inside_a_padded_or_cropped_frame() -> None:
    # A 1920x1080 source padded into 640x640: the picture is 640x360, 140 px down.
    region = _region(left="300", top="150", width="300", height="90")
    assert region_box(region, (1920, 1080), (640, 640), (640, 360)) == Box(100, 190, 100, 30)
    # Cropped into 360x360: the picture is 640x360, 140 px of it cut on the left.
    assert region_box(region, (1920, 1080), (360, 360), (640, 360)) == Box(0, 50, 60, 30)
    # A region wholly in the cropped-off part is left out.
    assert (
        region_box(_region(left="0", top="0", width="300"), (1920, 1080), (360, 360), (640, 360))
        is None
    )
