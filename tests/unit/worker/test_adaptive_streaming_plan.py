"""adaptiveStreaming: the spec's rules (with the CEL twins' cases), the plan
(never above the source, audio renditions) and the commands (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mediaflow_api.presets import LADDERS, resolve_ladder
from mediaflow_api.tasks import (
    HEVC_LADDERS,
    AdaptiveStreamingTask,
    Rendition,
    TaskSpec,
    Watermark,
)
from mediaflow_worker import preflight
from mediaflow_worker.ffmpeg import adaptive_streaming as ffas
from mediaflow_worker.ffmpeg.watermark import WatermarkInput
from mediaflow_worker.probe import parse_probe
from mediaflow_worker.tasks import adaptive_streaming as task

pytestmark = pytest.mark.unit

# Valid specs (also sent to a real API server by test_task_cel_twins.py).
STREAMING_VALID: list[dict[str, Any]] = [
    {
        "name": "per-rendition",
        "adaptiveStreaming": {
            "segmentFormat": "fmp4",
            "capAtSource": False,
            "renditions": [
                {"height": 720, "videoBitrate": "2500k", "codec": "h265", "fps": 30},
                {"width": 640, "videoBitrate": "800k", "audioChannels": 1},
                {
                    "width": 426,
                    "height": 240,
                    "videoBitrate": "300k",
                    "audioBitrate": "64k",
                    "audioSampleRate": 44100,
                },
            ],
        },
    },
    {"name": "cmaf", "adaptiveStreaming": {"format": "cmaf", "ladder": "hevc-ladder"}},
    {
        "name": "audio-ladder",
        "adaptiveStreaming": {
            "audioOnly": True,
            "ladder": "hevc-ladder",
            "segmentFormat": "ts",
            "audioRenditions": [{"bitrate": "128k"}, {"bitrate": "64k", "channels": 1}],
        },
    },
    {
        "name": "encrypted",
        "adaptiveStreaming": {
            "encryption": {
                "keySecret": {"name": "hls-keys", "key": "movie.key"},
                "keyUri": "https://keys.example.com/v1/movie",
            }
        },
    },
    {
        "name": "marked",
        "adaptiveStreaming": {"watermarks": [{"text": "preview", "position": "bottom-left"}]},
    },
]


def _streaming(fields: dict[str, Any]) -> dict[str, Any]:
    return {"name": "a", "adaptiveStreaming": fields}


_KEY = {"keySecret": {"name": "k", "key": "key"}, "keyUri": "https://k.example/1"}
# (spec, text the error message must contain)
STREAMING_INVALID: list[tuple[dict[str, Any], str]] = [
    (_streaming({"renditions": [{"videoBitrate": "1M"}]}), "set height, width or both"),
    (
        _streaming(
            {
                "renditions": [
                    {"width": 640, "videoBitrate": "1M"},
                    {"width": 640, "videoBitrate": "2M"},
                ]
            }
        ),
        "sizes must be distinct",
    ),
    (
        _streaming({"audioRenditions": [{"bitrate": "64k"}, {"bitrate": "64k", "channels": 1}]}),
        "bitrates must be distinct",
    ),
    (_streaming({"format": "dash", "segmentFormat": "ts"}), "applies to format hls only"),
    (_streaming({"codec": "h265", "segmentFormat": "ts"}), "h265 in HLS needs segmentFormat"),
    (
        _streaming({"ladder": "hevc-ladder", "segmentFormat": "ts"}),
        "h265 in HLS needs segmentFormat",
    ),
    (
        _streaming(
            {
                "segmentFormat": "ts",
                "renditions": [{"height": 360, "videoBitrate": "1M", "codec": "h265"}],
            }
        ),
        "h265 in HLS needs segmentFormat",
    ),
    (_streaming({"format": "cmaf", "encryption": _KEY}), "needs format hls with ts segments"),
    (
        _streaming({"segmentFormat": "fmp4", "encryption": _KEY}),
        "needs format hls with ts segments",
    ),
    (_streaming({"ladder": "hevc-ladder", "encryption": _KEY}), "cannot hold h265"),
    (
        _streaming({"encryption": {**_KEY, "keyUri": "https://k.example/a b"}}),
        "keyUri",
    ),
    (
        _streaming({"encryption": {**_KEY, "keySecret": {"name": "Bad_Name", "key": "k"}}}),
        "name",
    ),
    (
        _streaming({"audioOnly": True, "watermarks": [{"text": "x"}]}),
        "watermarks need video",
    ),
    (_streaming({"renditions": [{"height": 360, "videoBitrate": "1M", "fps": 0}]}), "fps"),
    (
        _streaming({"renditions": [{"height": 360, "videoBitrate": "1M", "audioChannels": 6}]}),
        "audioChannels",
    ),
]


@pytest.mark.parametrize("raw", STREAMING_VALID, ids=lambda r: r["name"])
def test_valid_streaming_specs_round_trip(raw: dict[str, Any]) -> None:
    spec = TaskSpec.model_validate(raw)
    dumped = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert TaskSpec.model_validate(dumped) == spec


@pytest.mark.parametrize(
    ("raw", "needle"), STREAMING_INVALID, ids=[n for _, n in STREAMING_INVALID]
)
def test_invalid_streaming_specs_are_refused_naming_the_field(
    raw: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskSpec.model_validate(raw)
    assert needle in str(caught.value)


def test_every_streaming_rule_has_a_cel_twin() -> None:
    schema = AdaptiveStreamingTask.model_json_schema(by_alias=True)
    text = str(schema)
    for needle in (
        "set height, width or both",
        "sizes must be distinct",
        "bitrates must be distinct",
        "applies to format hls only",
        "h265 in HLS needs segmentFormat fmp4",
        "needs format hls with ts segments",
        "cannot hold h265",
        "watermarks need video",
    ):
        assert needle in text, needle


def test_the_hevc_ladders_the_cel_rules_name_are_the_presets_h265_ladders() -> None:
    assert set(HEVC_LADDERS) == {name for name, (codec, _) in LADDERS.items() if codec == "h265"}


def test_resolve_fills_each_renditions_codec() -> None:
    spec = AdaptiveStreamingTask.model_validate(
        {
            "codec": "h265",
            "renditions": [
                {"height": 360, "videoBitrate": "1M", "codec": "h264"},
                {"height": 720, "videoBitrate": "2M"},
            ],
        }
    )
    codec, renditions = resolve_ladder(spec)
    assert codec == "h265"
    assert [(r.height, r.codec) for r in renditions] == [(720, "h265"), (360, "h264")]


def _r(**fields: Any) -> Rendition:
    return Rendition.model_validate({"videoBitrate": "1M", **fields})


def test_a_1080p_ladder_on_a_360p_source_keeps_what_fits_and_says_what_it_dropped() -> None:
    dropped: list[ffas.DroppedRendition] = []
    planned = ffas.plan_ladder(
        [_r(height=1080), _r(height=720), _r(height=360), _r(height=240)],
        (640, 360),
        dropped=dropped,
    )
    assert [(p.width, p.height) for p in planned] == [(640, 360), (426, 240)]
    assert [d.rendition.height for d in dropped] == [1080, 720]
    assert "larger than the source (640x360)" in dropped[0].reason


def test_width_is_the_long_side_and_a_box_fits_the_aspect() -> None:
    planned = ffas.plan_ladder([_r(width=640), _r(width=480, height=480)], (1920, 1080))
    assert [(p.width, p.height) for p in planned] == [(640, 360), (480, 270)]
    portrait = ffas.plan_ladder([_r(width=640)], (1080, 1920))
    assert [(p.width, p.height) for p in portrait] == [(360, 640)]


def test_bitrates_are_capped_at_the_source_and_fps_applies_only_below_it() -> None:
    planned = ffas.plan_ladder(
        [_r(height=360, videoBitrate="5M", fps=60), _r(height=180, videoBitrate="200k", fps=10)],
        (640, 360),
        source_fps=25,
        source_bitrate=1_000_000,
    )
    top, low = planned
    assert (top.video_bitrate, top.peak, top.capped, top.fps) == (1_000_000, 1_500_000, True, None)
    assert (low.video_bitrate, low.capped, low.fps) == (200_000, False, 10)
    audio = ffas.plan_audio("128k", None, None, source_bitrate=64_000)
    assert (audio.bitrate, audio.capped, audio.channels, audio.sample_rate) == (
        64_000,
        True,
        2,
        48000,
    )


def _probe(streams: list[dict[str, Any]], bit_rate: str | None = None) -> Any:
    fmt = {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "2.0"}
    if bit_rate:
        fmt["bit_rate"] = bit_rate
    return parse_probe({"format": fmt, "streams": streams}, 1000)


_VIDEO = {
    "codec_type": "video",
    "codec_name": "h264",
    "width": 640,
    "height": 360,
    "avg_frame_rate": "25/1",
}
_AUDIO = {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "channels": 2}


def test_source_bitrates_come_from_the_streams_else_the_file() -> None:
    probe = _probe([{**_VIDEO, "bit_rate": "900000"}, {**_AUDIO, "bit_rate": "96000"}])
    assert task.source_bitrates(probe) == (900_000, 96_000)
    mkv = _probe([_VIDEO, _AUDIO], bit_rate="1200000")
    assert task.source_bitrates(mkv) == (1_200_000, None)
    assert task.source_bitrates(_probe([_VIDEO, _AUDIO])) == (None, None)


def _ladder(fields: dict[str, Any]) -> task.Ladder:
    return task.resolve(AdaptiveStreamingTask.model_validate(fields))


def test_an_audio_only_ladder_from_video_has_no_video_and_every_audio_rendition() -> None:
    probe = _probe([{**_VIDEO, "bit_rate": "900000"}, {**_AUDIO, "bit_rate": "96000"}])
    plan = task.plan_stream(_ladder({"audioOnly": True}), probe, (640, 360))
    assert plan.videos == []
    # standard-ladder's 128k and 96k, capped at the source's 96k: one.
    assert [a.bitrate for a in plan.audios] == [96_000]
    plan = task.plan_stream(
        _ladder(
            {
                "audioOnly": True,
                "audioRenditions": [{"bitrate": "64k"}, {"bitrate": "32k", "channels": 1}],
            }
        ),
        probe,
        (640, 360),
    )
    assert [(a.bitrate, a.channels) for a in plan.audios] == [(64_000, 2), (32_000, 1)]
    assert plan.audio_group
    assert ffas.hls_stream_map(plan) == "a:0 a:1"
    assert ffas.hls_segment_type(plan, None) == "fmp4"


def test_an_audio_input_gets_the_ladders_best_audio_unless_audio_only() -> None:
    probe = _probe([_AUDIO])
    plan = task.plan_stream(_ladder({}), probe, None)
    assert [a.bitrate for a in plan.audios] == [128_000]
    plan = task.plan_stream(_ladder({"audioOnly": True}), probe, None)
    assert [a.bitrate for a in plan.audios] == [128_000, 96_000]


def test_hls_audio_renditions_with_video_are_a_group() -> None:
    probe = _probe([_VIDEO, _AUDIO])
    plan = task.plan_stream(
        _ladder({"ladder": "mobile-ladder", "audioRenditions": [{"bitrate": "64k"}]}),
        probe,
        (640, 360),
    )
    assert (
        ffas.hls_stream_map(plan)
        == "v:0,agroup:audio v:1,agroup:audio a:0,agroup:audio,default:yes"
    )
    assert ffas.hls_variant_count(plan) == 3


def _args(plan: ffas.StreamPlan, **kwargs: Any) -> list[str]:
    return ffas.stream_args(
        Path("/i"),
        "mov",
        1,
        plan,
        preset="veryfast",
        segment_seconds=2,
        out_dir=Path("/o"),
        **{"fmt": "hls", **kwargs},
    )


def test_per_rendition_codec_fps_and_audio_settings_reach_the_encoders() -> None:
    r0 = ffas.PlannedRendition(_r(height=360), 640, 360, "h265", 15)
    r1 = ffas.PlannedRendition(_r(height=180, videoBitrate="200k"), 320, 180, "h264")
    audios = [ffas.PlannedAudio(96_000, 2, 48000), ffas.PlannedAudio(48_000, 1, 44100)]
    args = _args(ffas.StreamPlan([r0, r1], audios))
    graph = args[args.index("-filter_complex") + 1]
    assert "[s0]scale=640:360,setsar=1,fps=15[b0]" in graph
    assert "[s1]scale=320:180,setsar=1[b1]" in graph
    assert args[args.index("-c:v:0") + 1] == "libx265"
    assert args[args.index("-c:v:1") + 1] == "libx264"
    assert args[args.index("-tag:v:0") + 1] == "hvc1"
    assert args[args.index("-sc_threshold:v:1") + 1] == "0"
    assert args[args.index("-ac:a:1") + 1] == "1"
    assert args[args.index("-ar:a:1") + 1] == "44100"
    assert args[args.index("-b:a:0") + 1] == "96000"
    # h265 in HLS: fMP4 segments.
    assert args[args.index("-hls_segment_type") + 1] == "fmp4"
    assert args[args.index("-var_stream_map") + 1] == "v:0,a:0 v:1,a:1"


def test_cmaf_is_the_dash_muxer_writing_hls_playlists_too() -> None:
    r0 = ffas.PlannedRendition(_r(height=360), 640, 360)
    args = _args(ffas.StreamPlan([r0], [ffas.PlannedAudio(96_000)]), fmt="cmaf")
    assert args[args.index("-f", args.index("-map_metadata")) + 1] == "dash"
    assert args[args.index("-hls_playlist") + 1] == "1"
    assert args[args.index("-adaptation_sets") + 1] == "id=0,streams=v id=1,streams=a"
    assert args[-1] == "/o/manifest.mpd"
    dash = _args(ffas.StreamPlan([r0], [ffas.PlannedAudio(96_000)]), fmt="dash")
    assert "-hls_playlist" not in dash


def test_ts_or_fmp4_segments_as_asked() -> None:
    plan = ffas.StreamPlan([ffas.PlannedRendition(_r(height=360), 640, 360)], [])
    ts = _args(plan)
    assert ts[ts.index("-hls_segment_type") + 1] == "mpegts"
    assert ts[ts.index("-hls_segment_filename") + 1] == "/o/stream_%v/segment_%05d.ts"
    fmp4 = _args(plan, segment_format="fmp4")
    assert fmp4[fmp4.index("-hls_segment_type") + 1] == "fmp4"
    assert fmp4[fmp4.index("-hls_segment_filename") + 1] == "/o/stream_%v/segment_%05d.m4s"


def test_dash_renditions_share_the_largest_ones_display_aspect_ratio() -> None:
    top = ffas.PlannedRendition(_r(height=360), 640, 360)
    low = ffas.PlannedRendition(_r(height=240), 426, 240)
    assert ffas.sample_aspect(low, top) == "640/639"
    assert ffas.sample_aspect(top, top) == "1/1"
    args = _args(ffas.StreamPlan([top, low], []), fmt="dash")
    assert "setsar=640/639" in args[args.index("-filter_complex") + 1]
    assert args[args.index("-aspect:v:1") + 1] == "640:360"
    hls = _args(ffas.StreamPlan([top, low], []))
    assert "-aspect:v:1" not in hls
    assert "setsar=640/639" not in hls[hls.index("-filter_complex") + 1]


def test_an_hls_key_is_16_raw_bytes_or_32_hex_digits() -> None:
    raw = bytes(range(16))
    assert task.parse_hls_key(raw) == raw
    assert task.parse_hls_key((raw.hex() + "\n").encode()) == raw
    with pytest.raises(ValueError, match="is 15 bytes"):
        task.parse_hls_key(b"x" * 15)
    with pytest.raises(ValueError, match="32 hex digits") as caught:
        task.parse_hls_key(b"not-a-key-but-some-secret-text-1234")
    assert "secret-text" not in str(caught.value)


def test_encryption_passes_the_key_info_file_to_the_hls_muxer() -> None:
    plan = ffas.StreamPlan([ffas.PlannedRendition(_r(height=360), 640, 360)], [])
    args = _args(plan, segment_format="ts", key_info=Path("/scratch/hls.keyinfo"))
    assert args[args.index("-hls_key_info_file") + 1] == "/scratch/hls.keyinfo"
    assert args[args.index("-hls_segment_type") + 1] == "mpegts"
    assert "-hls_key_info_file" not in _args(plan)


def test_watermarks_are_drawn_per_rendition_with_their_own_labels_and_image_inputs() -> None:
    image = Watermark.model_validate(
        {"image": {"bucket": "assets", "key": "logo.png"}, "width": "10%"}
    )
    text = Watermark.model_validate({"text": "x", "fontSize": "10%"})
    marks = [
        WatermarkInput(image, 1, (200, 100), None, Path("/s/logo.png")),
        WatermarkInput(text, None, None, Path("/s/t.txt")),
    ]
    top = ffas.PlannedRendition(_r(height=720), 1280, 720)
    low = ffas.PlannedRendition(_r(height=360), 640, 360)
    args = _args(ffas.StreamPlan([top, low], []), marks=marks)
    # One copy of the image per rendition, after the source.
    assert [args[i + 1] for i, a in enumerate(args) if a == "-i"] == [
        "file:/i",
        "file:/s/logo.png",
        "file:/s/logo.png",
    ]
    graph = args[args.index("-filter_complex") + 1]
    # 10 % of each rendition's width; each reads its own image input.
    assert "[1:v]scale=128:64" in graph
    assert "[2:v]scale=64:32" in graph
    assert "[b0][r0wm0]overlay=" in graph
    assert "[b1][r1wm0]overlay=" in graph
    assert "fontsize=72" in graph
    assert "fontsize=36" in graph
    assert "[r0wm1out]format=yuv420p[v0]" in graph
    assert "[r1wm1out]format=yuv420p[v1]" in graph
    assert graph.count("[wm") == 0


def test_preflight_checks_the_images_and_font_of_streaming_watermarks() -> None:
    tasks = [
        TaskSpec.model_validate(
            {
                "name": "hls",
                "adaptiveStreaming": {
                    "watermarks": [
                        {"image": {"bucket": "assets", "key": "logo.png"}},
                        {"text": "preview"},
                    ]
                },
            }
        )
    ]
    assert [(r.task, r.key) for r in preflight.watermark_images(tasks)] == [("hls", "logo.png")]
    assert preflight.text_watermark_tasks(tasks) == ["hls"]
