"""Encoder control of the transcode task (issue 13, item 7): the model rules
(each with its CEL twin, proven against an API server by
``test_task_cel_twins``), the preset resolution and the encoder options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mediaflow_api.presets import resolve_transcode
from mediaflow_api.tasks import AudioSettings, TaskSpec, TranscodeTask, VideoSettings
from mediaflow_api.tasks.transcode import Loudness
from mediaflow_worker.ffmpeg import audio, transcode
from mediaflow_worker.probe import AudioInfo, AudioTrack, VideoInfo

pytestmark = pytest.mark.unit

ENCODER_VALID: list[dict[str, Any]] = [
    {
        "name": "gop-seconds",
        "transcode": {
            "preset": "h264-720p",
            "video": {"profile": "high", "level": "4.1", "bframes": 3, "gopSeconds": 2},
        },
    },
    {
        "name": "hevc-main",
        "transcode": {"video": {"codec": "h265", "profile": "main", "level": "5", "bframes": 0}},
    },
]

ENCODER_VALID += [
    {
        "name": "cbr-two-pass",
        "transcode": {
            "container": "ts",
            "video": {"rateControl": "cbr", "bitrate": "4M", "bufsize": "4M", "twoPass": True},
        },
    },
    {
        "name": "vbr",
        "transcode": {"video": {"codec": "vp9", "rateControl": "vbr", "bitrate": "1M"}},
    },
]

ENCODER_VALID += [
    {"name": "hdr", "transcode": {"video": {"codec": "h265", "hdr": "passthrough"}}},
    {
        "name": "ten-bit",
        "transcode": {"video": {"codec": "h264", "profile": "high10", "bitDepth": 10}},
    },
    {"name": "sdr", "transcode": {"video": {"codec": "av1", "bitDepth": 10, "hdr": "tonemap"}}},
]

ENCODER_VALID += [
    {
        "name": "broadcast-audio",
        "transcode": {
            "container": "ts",
            "audio": {
                "codec": "ac3",
                "bitrate": "384k",
                "tracks": "all",
                "loudness": {"integrated": -23, "truePeak": -1, "range": 11},
            },
        },
    },
    {
        "name": "languages",
        "transcode": {"container": "mkv", "audio": {"codec": "copy", "languages": ["eng", "fra"]}},
    },
    {"name": "eac3", "transcode": {"container": "mp4", "audio": {"codec": "eac3"}}},
    {"name": "loudness-defaults", "transcode": {"audio": {"loudness": {}}}},
]

ENCODER_VALID += [
    {"name": "trim-end", "transcode": {"trim": {"start": 2, "end": 10.5}}},
    {"name": "trim-end-offset", "transcode": {"trim": {"endOffset": 5}}},
]

ENCODER_INVALID: list[tuple[dict[str, Any], str]] = [
    (
        {"name": "a", "transcode": {"video": {"codec": "h265", "profile": "high"}}},
        "video.profile does not fit video.codec",
    ),
    (
        {"name": "a", "transcode": {"video": {"codec": "vp9", "profile": "main"}}},
        "video.profile does not fit video.codec",
    ),
    (
        {"name": "a", "transcode": {"video": {"codec": "av1", "bframes": 2}}},
        "video.level and video.bframes apply to h264 and h265 only",
    ),
    (
        {"name": "a", "transcode": {"video": {"profile": "baseline", "bframes": 2}}},
        "video.profile baseline has no B-frames",
    ),
    (
        {"name": "a", "transcode": {"video": {"gop": 50, "gopSeconds": 2}}},
        "video.gop and video.gopSeconds are mutually exclusive",
    ),
    ({"name": "a", "transcode": {"video": {"level": "4.12"}}}, "level"),
    ({"name": "a", "transcode": {"video": {"bframes": 17}}}, "bframes"),
    (
        {"name": "a", "transcode": {"video": {"codec": "copy", "gopSeconds": 2}}},
        "takes no encoding settings",
    ),
    (
        {"name": "a", "transcode": {"video": {"rateControl": "crf", "bitrate": "1M"}}},
        "video.rateControl crf takes crf, not bitrate",
    ),
    (
        {"name": "a", "transcode": {"video": {"rateControl": "cbr"}}},
        "video.rateControl vbr/cbr needs video.bitrate",
    ),
    (
        {"name": "a", "transcode": {"video": {"rateControl": "vbr", "crf": 20}}},
        "video.rateControl vbr/cbr needs video.bitrate",
    ),
    (
        {"name": "a", "transcode": {"video": {"twoPass": True, "crf": 20}}},
        "video.twoPass needs video.bitrate",
    ),
    (
        {
            "name": "a",
            "transcode": {"video": {"codec": "av1", "rateControl": "cbr", "bitrate": "1M"}},
        },
        "video.rateControl cbr and video.twoPass take h264, h265 or vp9",
    ),
    (
        {
            "name": "a",
            "transcode": {"video": {"rateControl": "cbr", "bitrate": "1M", "maxrate": "2M"}},
        },
        "video.rateControl cbr sets maxrate to bitrate",
    ),
    (
        {"name": "a", "transcode": {"video": {"profile": "main10", "bitDepth": 8}}},
        "video.profile and video.bitDepth disagree",
    ),
    (
        {"name": "a", "transcode": {"video": {"profile": "high", "bitDepth": 10}}},
        "video.profile and video.bitDepth disagree",
    ),
    (
        {"name": "a", "transcode": {"video": {"hdr": "passthrough", "bitDepth": 8}}},
        "video.hdr passthrough needs 10-bit output",
    ),
    (
        {"name": "a", "transcode": {"video": {"codec": "h264", "hdr": "passthrough"}}},
        "video.hdr passthrough takes h265, av1 or vp9",
    ),
    ({"name": "a", "transcode": {"video": {"bitDepth": 12}}}, "bitDepth"),
    (
        {"name": "a", "transcode": {"container": "webm", "audio": {"codec": "ac3"}}},
        "audio.codec",
    ),
    (
        {"name": "a", "transcode": {"audio": {"tracks": "all", "languages": ["eng"]}}},
        "audio.tracks and audio.languages are mutually exclusive",
    ),
    (
        {"name": "a", "transcode": {"audio": {"codec": "copy", "loudness": {}}}},
        "takes no encoding settings",
    ),
    ({"name": "a", "transcode": {"audio": {"languages": ["english"]}}}, "languages"),
    ({"name": "a", "transcode": {"audio": {"loudness": {"integrated": -3}}}}, "integrated"),
    (
        {"name": "a", "transcode": {"trim": {"duration": 3, "end": 5}}},
        "trim: set at most one of duration, end and endOffset",
    ),
    (
        {"name": "a", "transcode": {"trim": {"end": 5, "endOffset": 1}}},
        "trim: set at most one of duration, end and endOffset",
    ),
    (
        {"name": "a", "transcode": {"trim": {"start": 5, "end": 5}}},
        "trim.end must be after trim.start",
    ),
    ({"name": "a", "transcode": {"trim": {"endOffset": 0}}}, "endOffset"),
]


@pytest.mark.parametrize("raw", ENCODER_VALID, ids=lambda r: r["name"])
def test_encoder_settings_validate_and_round_trip(raw: dict[str, Any]) -> None:
    task = TaskSpec.model_validate(raw)
    dumped = task.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert TaskSpec.model_validate(dumped) == task


@pytest.mark.parametrize(("raw", "needle"), ENCODER_INVALID, ids=[n for _, n in ENCODER_INVALID])
def test_bad_encoder_settings_are_refused_naming_the_field(
    raw: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskSpec.model_validate(raw)
    assert needle in str(caught.value)


def test_gop_seconds_replaces_the_presets_gop_and_profile_is_checked_on_the_resolved_codec() -> (
    None
):
    task = resolve_transcode(
        TranscodeTask.model_validate({"preset": "h264-720p", "video": {"gopSeconds": 2}})
    )
    assert task.video is not None
    assert (task.video.gop, task.video.gop_seconds) == (None, 2)
    with pytest.raises(ValueError, match="'high' is no vp9 profile"):
        resolve_transcode(
            TranscodeTask.model_validate({"preset": "vp9-720p", "video": {"profile": "high"}})
        )


def _after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_h264_profile_level_bframes_and_gop_seconds_options() -> None:
    video = VideoSettings(
        codec="h264", crf=23, profile="main", level="3.1", bframes=2, gopSeconds=2
    )
    args = transcode.video_codec_args(video, "mp4", 25.0)
    assert (_after(args, "-profile:v"), _after(args, "-level:v"), _after(args, "-bf")) == (
        "main",
        "3.1",
        "2",
    )
    # 2 s at the source's 25 fps: 50 frames, closed, no scene-cut keyframes,
    # and an IDR forced at every multiple of 2 s.
    assert (_after(args, "-g"), _after(args, "-keyint_min")) == ("50", "50")
    assert _after(args, "-sc_threshold") == "0"
    assert _after(args, "-flags") == "+cgop"
    assert _after(args, "-forced-idr") == "1"
    assert _after(args, "-force_key_frames") == "expr:gte(t,n_forced*2)"


def test_gop_seconds_counts_frames_at_the_output_rate_when_fps_is_set() -> None:
    args = transcode.video_codec_args(
        VideoSettings(codec="vp9", crf=30, fps=30, gopSeconds=0.5), "webm", 25.0
    )
    assert _after(args, "-g") == "15"
    assert "-sc_threshold" not in args


def test_h265_level_and_closed_gop_go_into_x265_params() -> None:
    args = transcode.video_codec_args(
        VideoSettings(codec="h265", crf=28, profile="main", level="4.1", gopSeconds=1),
        "mp4",
        30.0,
    )
    params = _after(args, "-x265-params").split(":")
    assert params == [
        "log-level=error",
        "level-idc=4.1",
        "scenecut=0",
        "open-gop=0",
        "keyint=30",
        "min-keyint=30",
    ]
    assert "-g" not in args
    assert _after(args, "-profile:v") == "main"


def test_gop_seconds_of_a_source_without_a_known_rate_only_forces_keyframes() -> None:
    args = transcode.video_codec_args(
        VideoSettings(codec="h264", crf=23, gopSeconds=2), "mp4", None
    )
    assert "-g" not in args
    assert _after(args, "-force_key_frames") == "expr:gte(t,n_forced*2)"


def test_cbr_sets_min_max_and_a_one_second_buffer_and_signals_hrd() -> None:
    video = VideoSettings(codec="h264", rateControl="cbr", bitrate="2M")
    args = transcode.video_codec_args(video, "ts", 25.0)
    for flag in ("-b:v", "-minrate", "-maxrate", "-bufsize"):
        assert _after(args, flag) == "2000000", flag
    assert _after(args, "-nal-hrd") == "cbr"
    assert "-crf" not in args
    h265 = transcode.video_codec_args(
        VideoSettings(codec="h265", rateControl="cbr", bitrate="2M", bufsize="4M"), "ts", 25.0
    )
    assert _after(h265, "-bufsize") == "4000000"
    assert "strict-cbr=1" in _after(h265, "-x265-params").split(":")


def test_two_pass_options_name_the_stats_file_for_each_encoder(tmp_path: Path) -> None:
    prefix = tmp_path / "web-2pass"
    first = transcode.EncodePass(1, prefix)
    h264 = transcode.video_codec_args(
        VideoSettings(codec="h264", bitrate="1M", twoPass=True), "mp4", 25.0, None, first
    )
    assert (_after(h264, "-pass"), _after(h264, "-passlogfile")) == ("1", str(prefix))
    h265 = transcode.video_codec_args(
        VideoSettings(codec="h265", bitrate="1M", twoPass=True),
        "mp4",
        25.0,
        None,
        transcode.EncodePass(2, prefix),
    )
    assert "-pass" not in h265
    assert _after(h265, "-x265-params").split(":")[-2:] == ["pass=2", f"stats={prefix}.log"]
    # libvpx's two-pass needs a frame-rate time base (see video_codec_args).
    vp9 = transcode.video_codec_args(
        VideoSettings(codec="vp9", bitrate="1M", twoPass=True), "webm", 25.0, None, first
    )
    assert "-enc_time_base:v" not in vp9
    assert _after(vp9, "-fps_mode") == "vfr"


def test_rate_control_resolution_drops_the_presets_crf_and_cap_for_cbr() -> None:
    task = resolve_transcode(
        TranscodeTask.model_validate(
            {"preset": "h264-720p", "video": {"rateControl": "cbr", "bitrate": "3M"}}
        )
    )
    assert task.video is not None
    assert (task.video.crf, task.video.maxrate, task.video.bufsize) == (None, None, None)
    with pytest.raises(ValueError, match="take h264, h265 or vp9, not 'av1'"):
        resolve_transcode(
            TranscodeTask.model_validate(
                {"preset": "av1-720p", "video": {"bitrate": "1M", "twoPass": True}}
            )
        )


def _source(transfer: str | None, primaries: str | None = "bt2020") -> VideoInfo:
    return VideoInfo(
        codec="hevc",
        width=1280,
        height=720,
        rotation=0,
        sar=1.0,
        fps=30.0,
        pix_fmt="yuv420p10le",
        frames=None,
        color_primaries=primaries,
        color_transfer=transfer,
        color_space="bt2020nc",
        color_range="tv",
    )


def test_an_hdr_source_is_tone_mapped_to_bt709_unless_passed_through() -> None:
    plan = transcode.plan_color(VideoSettings(codec="h264"), _source("smpte2084"))
    assert plan.pix_fmt == "yuv420p"
    assert plan.tonemap is not None
    assert plan.tonemap.startswith("zscale=tin=smpte2084:pin=bt2020:min=bt2020nc:rin=tv")
    assert "tonemap=tonemap=hable" in plan.tonemap
    assert plan.tags[plan.tags.index("-color_trc") + 1] == "bt709"
    graph = transcode.transcode_video_graph((640, 360), None, [], color=plan)
    assert graph.startswith("[0:V:0]scale=640:360,setsar=1,zscale=tin=smpte2084")
    assert graph.endswith("format=yuv420p[vout]")

    kept = transcode.plan_color(
        VideoSettings(codec="h265", hdr="passthrough"), _source("arib-std-b67")
    )
    assert (kept.pix_fmt, kept.tonemap) == ("yuv420p10le", None)
    assert kept.tags == (
        *("-color_primaries", "bt2020", "-color_trc", "arib-std-b67"),
        *("-colorspace", "bt2020nc", "-color_range", "tv"),
    )


def test_unknown_primaries_fall_back_to_bt2020_in_the_tonemap_chain() -> None:
    plan = transcode.plan_color(VideoSettings(codec="h264"), _source("arib-std-b67", "film"))
    assert plan.tonemap is not None
    assert "pin=bt2020:" in plan.tonemap


def test_an_sdr_source_keeps_its_colours_and_gets_the_asked_bit_depth() -> None:
    plan = transcode.plan_color(VideoSettings(codec="av1", bitDepth=10), _source("bt709"))
    assert plan == transcode.ColorPlan("yuv420p10le", None, ())
    assert transcode.plan_color(VideoSettings(codec="h265", profile="main10"), _source(None)) == (
        transcode.ColorPlan("yuv420p10le")
    )


def test_ac3_keeps_its_rates_and_channel_limit_and_takes_a_bitrate() -> None:
    args = transcode.audio_codec_args(AudioSettings(codec="ac3", bitrate="384k"), 96000, 8)
    assert args == ["-c:a", "ac3", "-b:a", "384000", "-ar", "48000", "-ac", "6"]
    assert transcode.audio_codec_args(AudioSettings(codec="eac3"), 44100, 2) == ["-c:a", "eac3"]


def _tracks() -> list[AudioTrack]:
    return [
        AudioTrack(0, "aac", 48000, 2, "eng"),
        AudioTrack(1, "ac3", 48000, 6, "fra"),
        AudioTrack(2, "aac", 44100, 2, None),
    ]


def test_track_selection_by_default_all_and_language() -> None:
    tracks = _tracks()
    assert audio.select_tracks(tracks, AudioSettings(), "mp4") == tracks[:1]
    assert audio.select_tracks(tracks, AudioSettings(tracks="all"), "mkv") == tracks
    by_language = AudioSettings(languages=["fra", "deu", "eng"])
    assert audio.select_tracks(tracks, by_language, "mp4") == [tracks[1], tracks[0]]
    # No track in the language: the first, rather than a silent output.
    assert audio.select_tracks(tracks, AudioSettings(languages=["jpn"]), "mp4") == tracks[:1]
    # One track per file in mp3/wav/flac.
    assert audio.select_tracks(tracks, AudioSettings(tracks="all"), "mp3") == tracks[:1]
    assert audio.select_tracks([], AudioSettings(tracks="all"), "mkv") == []


def test_several_tracks_get_per_stream_options_filters_and_languages() -> None:
    tracks = _tracks()
    outputs = [audio.AudioOutput(tracks[1], "loudnorm=I=-23.0"), audio.AudioOutput(tracks[2])]
    args = transcode.audio_outputs_args(AudioSettings(codec="aac", bitrate="128k"), outputs)
    assert args == [
        *("-map", "0:a:1", "-filter:a:0", "loudnorm=I=-23.0"),
        *("-c:a:0", "aac", "-b:a:0", "128000", "-ar:a:0", "48000"),
        *("-metadata:s:a:0", "language=fra"),
        *("-map", "0:a:2", "-c:a:1", "aac", "-b:a:1", "128000"),
    ]


_REPORT = """[Parsed_loudnorm_0 @ 0x5581]
{
	"input_i" : "-27.61",
	"input_tp" : "-4.47",
	"input_lra" : "18.10",
	"input_thresh" : "-39.20",
	"output_i" : "-16.58",
	"output_tp" : "-1.50",
	"output_lra" : "14.80",
	"output_thresh" : "-27.71",
	"normalization_type" : "dynamic",
	"target_offset" : "0.58"
}"""


def test_the_first_pass_report_becomes_a_linear_second_pass_filter() -> None:
    measured = audio.parse_loudness_report(["size=N/A time=00:00:05", *_REPORT.splitlines()])
    assert measured == audio.LoudnessMeasurement(-27.61, -4.47, 18.10, -39.20, 0.58)
    target = Loudness(integrated=-16, truePeak=-1.5, range=11)
    assert audio.loudnorm_filter(target, measured) == (
        "loudnorm=I=-16.0:TP=-1.5:LRA=11.0:measured_I=-27.61:measured_TP=-4.47"
        ":measured_LRA=18.10:measured_thresh=-39.20:offset=0.58:linear=true:print_format=none"
    )


def test_a_silent_or_missing_measurement_gives_no_filter() -> None:
    silent = _REPORT.replace('"-27.61"', '"-inf"')
    measured = audio.parse_loudness_report(silent.splitlines())
    assert measured is not None
    assert audio.loudnorm_filter(Loudness(), measured) is None
    assert audio.parse_loudness_report(["no report here"]) is None


def test_the_measuring_pass_maps_one_track_of_the_trimmed_part(tmp_path: Path) -> None:
    args = audio.loudness_measure_args(
        tmp_path / "in.mkv", "matroska", 1000, 2, Loudness(), start=1.5, duration=3
    )
    assert args[args.index("-v") + 1] == "info"
    assert args[args.index("-ss") + 1] == "1.500"
    assert args[args.index("-t") + 1] == "3.000"
    assert args[args.index("-map") + 1] == "0:a:2"
    assert args[args.index("-af") + 1] == "loudnorm=I=-23.0:TP=-1.0:LRA=7.0:print_format=json"
    assert args[-3:] == ["-f", "null", "-"]


def test_end_and_end_offset_become_a_duration_for_the_commands() -> None:
    from mediaflow_worker.tasks import TaskNotApplicable
    from mediaflow_worker.tasks.transcode import resolve_trim

    def trimmed(trim: dict[str, float], input_duration: float) -> tuple[float, float | None]:
        spec = resolve_trim(TranscodeTask.model_validate({"trim": trim}), input_duration)
        assert spec.trim is not None
        assert (spec.trim.end, spec.trim.end_offset) == (None, None)
        return spec.trim.start, spec.trim.duration

    assert trimmed({"start": 2, "end": 7.5}, 60) == (2, 5.5)
    assert trimmed({"start": 1, "endOffset": 5}, 60) == (1, 54)
    assert trimmed({"start": 1, "duration": 3}, 60) == (1, 3)
    # Unknown input length: nothing can be cut from the end.
    assert trimmed({"endOffset": 5}, 0) == (0, None)
    with pytest.raises(TaskNotApplicable, match="trim leaves nothing"):
        trimmed({"start": 3, "endOffset": 4}, 6)


def test_a_transcode_can_reach_its_trim_start_by_decoding() -> None:
    spec = resolve_transcode(
        TranscodeTask.model_validate(
            {"trim": {"start": 2, "duration": 3}, "audio": {"codec": "aac"}}
        )
    )
    common: dict[str, Any] = {
        "video": _source(None, None),
        "audio": AudioInfo(codec="aac", sample_rate=48000, channels=2),
        "size": (640, 360),
        "max_output_bytes": 10**9,
        "out": Path("o.mp4"),
    }
    seeking = transcode.transcode_args(spec, Path("in.ts"), "mpegts", 10**8, **common)
    assert seeking.index("-ss") < seeking.index("-i")
    decoding = transcode.transcode_args(
        spec, Path("in.ts"), "mpegts", 10**8, seek_by_decoding=True, **common
    )
    assert "-ss" not in decoding  # the whole input is decoded ...
    graph = decoding[decoding.index("-filter_complex") + 1]
    # ... and what comes before 2 s is dropped, the clock restarting at 0.
    assert graph.startswith("[0:V:0]trim=start=2.000,setpts=PTS-STARTPTS[from];[from]scale=")
    audio_filter = decoding[decoding.index("-filter:a:0") + 1]
    assert audio_filter == "atrim=start=2.000,asetpts=PTS-STARTPTS"
    assert decoding[decoding.index("-t") + 1] == "3.000"
