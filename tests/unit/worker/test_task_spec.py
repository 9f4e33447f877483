"""The task spec models: validation, CEL twins, serialisation, presets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mediaflow_api.presets import LADDERS, TRANSCODE_PRESETS, resolve_ladder, resolve_transcode
from mediaflow_api.tasks import (
    CONTAINER_VIDEO_CODECS,
    PRESET_CODECS,
    TASK_TYPES,
    SnapshotTask,
    TaskSpec,
    TranscodeTask,
    check_unique_task_names,
    parse_bitrate,
    task_json,
)

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]

VALID: list[dict[str, Any]] = [
    {"name": "web", "transcode": {"preset": "h264-720p"}},
    {
        "name": "custom",
        "transcode": {
            "container": "webm",
            "video": {"codec": "vp9", "width": 640, "crf": 33, "preset": "fast", "gop": 120},
            "audio": {"codec": "opus", "bitrate": "96k", "sampleRate": 48000, "channels": 2},
            "trim": {"start": 1.5, "duration": 10},
            "watermarks": [
                {"image": {"bucket": "assets", "key": "logo.png"}, "width": "10%", "opacity": 0.5},
                {
                    "text": "(c) me",
                    "position": "bottom-left",
                    "offsetX": "2%",
                    "start": 1,
                    "end": 5,
                },
            ],
            "fileName": "clip_small",
        },
    },
    {"name": "vp9-in-mkv", "transcode": {"preset": "vp9-720p", "container": "mkv"}},
    {
        "name": "burned-subtitles",
        "transcode": {
            "subtitles": {
                "file": {"bucket": "assets", "key": "subs/film.en.srt"},
                "style": {"fontSize": "6%", "fontColor": "#ffff00", "position": "top"},
            }
        },
    },
    {
        "name": "blurred",
        "transcode": {
            "privacy": {
                "regions": [
                    {
                        "left": "10%",
                        "top": "5%",
                        "width": "20%",
                        "height": "20%",
                        "start": 1,
                        "end": 4,
                    },
                    {
                        "left": "100",
                        "top": "40px",
                        "width": "64",
                        "height": "64",
                        "style": "mosaic",
                    },
                ]
            }
        },
    },
    {
        "name": "with-intro",
        "transcode": {
            "preset": "h264-720p",
            "intro": {"bucket": "brand", "key": "clips/intro.mp4"},
            "outro": {"bucket": "brand", "key": "clips/outro.mp4"},
        },
    },
    {
        "name": "soft-subtitles",
        "transcode": {
            "container": "mkv",
            "video": {"codec": "copy"},
            "subtitles": {"mode": "soft", "language": "eng"},
        },
    },
    {
        "name": "remux",
        "transcode": {
            "container": "mkv",
            "video": {"codec": "copy"},
            "audio": {"codec": "copy"},
            "trim": {"start": 10, "duration": 30},
        },
    },
    {
        "name": "preset-codecs-overridden",
        "transcode": {
            "preset": "vp9-720p",
            "container": "mp4",
            "video": {"codec": "h264"},
            "audio": {"codec": "aac"},
        },
    },
    {"name": "thumbs", "snapshot": {"times": ["1", "12.5", "50%"], "format": "webp"}},
    {"name": "every", "snapshot": {"intervalSeconds": 10, "width": 320}},
    {"name": "n", "snapshot": {"count": 5}},
    {"name": "sheet", "sprite": {"intervalSeconds": 2, "columns": 5, "rows": 4}},
    {"name": "gif", "animatedImage": {"start": "10%", "duration": 2, "fps": 12}},
    {"name": "webp", "animatedImage": {"format": "webp"}},
    {"name": "hls", "adaptiveStreaming": {"ladder": "mobile-ladder"}},
    {
        "name": "hls-subs",
        "adaptiveStreaming": {
            "format": "cmaf",
            "subtitles": {
                "mode": "soft",
                "language": "eng",
                "file": {"bucket": "media-assets", "key": "subtitles/welcome.srt"},
            },
        },
    },
    {
        "name": "dash",
        "adaptiveStreaming": {
            "format": "dash",
            "renditions": [
                {"height": 720, "videoBitrate": "2500k"},
                {"height": 360, "videoBitrate": "600k"},
            ],
        },
    },
    {"name": "probe", "analysis": {}},
    {"name": "talk", "speech": {}},
    {
        "name": "talk-keywords",
        "speech": {
            "vadThreshold": 0.4,
            "keywords": [{"name": "brand", "words": ["mediaflow", "media flow"]}],
            "subtitleFormats": ["srt"],
            "maxCueCharacters": 32,
            "maxCueSeconds": 4,
        },
    },
    {
        "name": "named",
        "transcode": {"preset": "h264-720p"},
        "output": {
            "bucket": "public-media",
            "prefix": "videos/",
            "fileName": "{inputDir}{inputName}_{taskName}.{format}",
        },
    },
    {
        "name": "thumbs",
        "snapshot": {"count": 3},
        "output": {
            "prefix": "thumbs/",
            "fileName": "{inputName}/thumb-{number}.{format}",
            "numberWidth": 3,
        },
    },
    {
        "name": "hls-named",
        "adaptiveStreaming": {"ladder": "mobile-ladder"},
        "output": {"prefix": "streams/", "fileName": "{inputDir}{inputName}/{taskName}.{format}"},
    },
    {
        "name": "hls-segments",
        "adaptiveStreaming": {"format": "hls"},
        "output": {
            "prefix": "streams/",
            "fileName": "{inputName}/{taskName}.{format}",
            "variantName": "{inputName}_{rendition}.{format}",
            "segmentName": "{inputName}_{rendition}_{number}.{format}",
        },
    },
    {
        "name": "all",
        "analysis": {"sceneChanges": True, "black": True, "silence": True, "loudness": True},
    },
    {
        "name": "exact-stills",
        "snapshot": {
            "count": 2,
            "width": 320,
            "height": 240,
            "fillType": "pad",
            "padColor": "#102030",
            "adaptiveOrientation": True,
            "watermarks": [
                {"text": "你好", "font": "cjk-sans", "startFromEnd": 5, "endFromEnd": 1},
                {"image": {"bucket": "assets", "key": "logo.svg"}, "width": "20%"},
            ],
        },
    },
    {
        "name": "exact-sheet",
        "sprite": {"height": 90, "fillType": "crop", "watermarks": [{"text": "x", "start": 1}]},
    },
    {
        "name": "exact-gif",
        "animatedImage": {"height": 200, "fillType": "blur", "watermarks": [{"text": "x"}]},
    },
    {
        "name": "exact-video",
        "transcode": {
            "video": {"width": 1280, "height": 720, "fillType": "stretch"},
            "watermarks": [{"text": "x"}] * 10,
        },
    },
]


@pytest.mark.parametrize("raw", VALID, ids=lambda r: r["name"])
def test_valid_task_round_trips_through_its_json_form(raw: dict[str, Any]) -> None:
    task = TaskSpec.model_validate(raw)
    dumped = task.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert TaskSpec.model_validate(dumped) == task
    assert dumped == task_json(task)
    assert task.kind in TASK_TYPES


# (spec, text the error message must contain: it names the offending field)
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"name": "a"}, "exactly one of"),
    ({"name": "a", "analysis": {}, "snapshot": {"count": 1}}, "exactly one of"),
    ({"name": "Bad_Name", "analysis": {}}, "name"),
    ({"name": "x" * 64, "analysis": {}}, "name"),
    ({"name": "a", "transcode": {"preset": "h264-4k"}}, "preset"),
    # A ladder's subtitles are a WebVTT rendition: soft only, no style.
    ({"name": "a", "adaptiveStreaming": {"subtitles": {"mode": "burnIn"}}}, "subtitles.mode"),
    ({"name": "a", "adaptiveStreaming": {"subtitles": {"style": {}}}}, "subtitles.style"),
    ({"name": "a", "adaptiveStreaming": {"subtitles": {"language": "en"}}}, "language"),
    ({"name": "a", "transcode": {"container": "avi"}}, "container"),
    ({"name": "a", "transcode": {"video": {"crf": 23, "bitrate": "1M"}}}, "crf"),
    ({"name": "a", "transcode": {"video": {"crf": 99}}}, "crf"),
    ({"name": "a", "transcode": {"video": {"width": 8}}}, "width"),
    ({"name": "a", "transcode": {"video": {"bitrate": "fast"}}}, "bitrate"),
    ({"name": "a", "transcode": {"container": "webm", "video": {"codec": "h264"}}}, "video.codec"),
    ({"name": "a", "transcode": {"container": "mp3", "audio": {"codec": "aac"}}}, "audio.codec"),
    ({"name": "a", "transcode": {"container": "mp3", "video": {"codec": "vp9"}}}, "video.codec"),
    (
        {"name": "a", "transcode": {"video": {"codec": "copy", "height": 720}}},
        "takes no encoding settings",
    ),
    (
        {"name": "a", "transcode": {"audio": {"codec": "none", "sampleRate": 44100}}},
        "takes no encoding settings",
    ),
    # ffmpeg 5.1 muxes FLAC into MP4 only with -strict experimental.
    ({"name": "a", "transcode": {"container": "mp4", "audio": {"codec": "flac"}}}, "audio.codec"),
    (
        {"name": "a", "transcode": {"preset": "vp9-720p", "container": "mp4"}},
        "cannot hold the video codec",
    ),
    (
        {"name": "a", "transcode": {"preset": "audio-flac", "container": "mp4"}},
        "cannot hold the audio codec",
    ),
    (
        {
            "name": "a",
            "transcode": {"watermarks": [{"text": "x", "image": {"bucket": "abc", "key": "k"}}]},
        },
        "exactly one of image and text",
    ),
    (
        {"name": "a", "transcode": {"watermarks": [{"text": "x", "start": 5, "end": 2}]}},
        "watermark.end",
    ),
    ({"name": "a", "transcode": {"watermarks": [{"text": "x", "offsetX": "left"}]}}, "offsetX"),
    ({"name": "a", "transcode": {"watermarks": [{"text": "x", "opacity": 1.5}]}}, "opacity"),
    (
        {"name": "a", "transcode": {"video": {"codec": "copy"}, "watermarks": [{"text": "x"}]}},
        "watermarks",
    ),
    ({"name": "a", "snapshot": {}}, "times, intervalSeconds and count"),
    (
        {"name": "a", "snapshot": {"count": 3, "intervalSeconds": 2}},
        "times, intervalSeconds and count",
    ),
    ({"name": "a", "snapshot": {"times": ["abc"]}}, "times"),
    ({"name": "a", "snapshot": {"times": ["150%"]}}, "more than 100%"),
    ({"name": "a", "snapshot": {"count": 3, "format": "bmp"}}, "format"),
    ({"name": "a", "sprite": {"columns": 0}}, "columns"),
    ({"name": "a", "animatedImage": {"fps": 100}}, "fps"),
    ({"name": "a", "animatedImage": {"start": "200%"}}, "more than 100%"),
    ({"name": "a", "adaptiveStreaming": {"format": "smooth"}}, "format"),
    (
        {
            "name": "a",
            "adaptiveStreaming": {
                "renditions": [
                    {"height": 360, "videoBitrate": "1M"},
                    {"height": 360, "videoBitrate": "2M"},
                ]
            },
        },
        "sizes must be distinct",
    ),
    ({"name": "a", "adaptiveStreaming": {"segmentSeconds": 0}}, "segmentSeconds"),
    ({"name": "a", "analysis": {"sceneThreshold": 200}}, "sceneThreshold"),
    ({"name": "a", "analysis": {"surprise": True}}, "surprise"),
    (
        {"name": "a", "transcode": {"subtitles": {"mode": "soft", "style": {"outline": 2}}}},
        "subtitles.style applies to mode burnIn only",
    ),
    (
        {"name": "a", "transcode": {"video": {"codec": "copy"}, "subtitles": {}}},
        "subtitles burnIn needs the video to be encoded",
    ),
    (
        {"name": "a", "transcode": {"container": "ts", "subtitles": {"mode": "soft"}}},
        "subtitles soft needs a container that holds subtitles",
    ),
    ({"name": "a", "transcode": {"subtitles": {"language": "en"}}}, "language"),
    (
        {"name": "a", "transcode": {"subtitles": {"file": {"bucket": "abc", "key": "s.txt"}}}},
        "key",
    ),
    ({"name": "a", "transcode": {"subtitles": {"style": {"fontColor": "red"}}}}, "fontColor"),
    (
        {
            "name": "a",
            "transcode": {
                "privacy": {
                    "regions": [
                        {"left": "1", "top": "1", "width": "9", "height": "9", "start": 3, "end": 2}
                    ]
                }
            },
        },
        "privacy region end must be greater than start",
    ),
    (
        {
            "name": "a",
            "transcode": {
                "video": {"codec": "none"},
                "privacy": {"regions": [{"left": "1", "top": "1", "width": "9", "height": "9"}]},
            },
        },
        "transcode.privacy needs the video to be encoded",
    ),
    ({"name": "a", "transcode": {"privacy": {"regions": []}}}, "regions"),
    (
        {
            "name": "a",
            "transcode": {"video": {"codec": "copy"}, "outro": {"bucket": "abc", "key": "o"}},
        },
        "transcode.intro/outro need the video to be encoded",
    ),
    (
        {
            "name": "a",
            "transcode": {"audio": {"codec": "copy"}, "intro": {"bucket": "abc", "key": "i"}},
        },
        "transcode.intro/outro need the audio to be encoded or none",
    ),
    (
        {
            "name": "a",
            "transcode": {
                "audio": {"loudness": {"integrated": -16}},
                "outro": {"bucket": "abc", "key": "o"},
            },
        },
        "transcode.intro/outro join the first audio track as it is",
    ),
    (
        {
            "name": "a",
            "transcode": {"audio": {"tracks": "all"}, "intro": {"bucket": "abc", "key": "i"}},
        },
        "transcode.intro/outro join the first audio track as it is",
    ),
    (
        {
            "name": "a",
            "transcode": {
                "privacy": {
                    "regions": [
                        {"left": "1", "top": "1", "width": "9", "height": "9", "style": "pixel"}
                    ]
                }
            },
        },
        "style",
    ),
    ({"name": "a", "analysis": {}, "output": {"fileName": "{taskName}.json"}}, "{inputName}"),
    (
        {"name": "a", "analysis": {}, "output": {"fileName": "x.mediaflow/{inputName}.json"}},
        "mediaflow's own directories",
    ),
    (
        {
            "name": "a",
            "analysis": {},
            "output": {"fileName": "{inputName}.json", "prefix": "b.mediaflow/"},
        },
        "mediaflow's own directories",
    ),
    ({"name": "a", "analysis": {}, "output": {"fileName": "../{inputName}.json"}}, "fileName"),
    ({"name": "a", "analysis": {}, "output": {"fileName": "/{inputName}.json"}}, "fileName"),
    ({"name": "a", "analysis": {}, "output": {"fileName": "{inputName}{bad}.json"}}, "fileName"),
    ({"name": "a", "analysis": {}, "output": {"fileName": "{inputName}", "prefix": "x"}}, "prefix"),
    (
        {"name": "a", "snapshot": {"count": 2}, "output": {"fileName": "{inputName}.{format}"}},
        "must contain {number}",
    ),
    (
        {"name": "a", "sprite": {}, "output": {"fileName": "{inputName}.{format}"}},
        "must contain {number}",
    ),
    (
        {
            "name": "a",
            "adaptiveStreaming": {},
            "output": {"fileName": "hls/{inputName}.{format}"},
        },
        "{inputName} in a directory",
    ),
    (
        {
            "name": "a",
            "transcode": {"fileName": "clip"},
            "output": {"fileName": "{inputName}.{format}"},
        },
        "not both",
    ),
    (
        {
            "name": "a",
            "adaptiveStreaming": {},
            "output": {"fileName": "{inputName}/m.{format}", "segmentName": "{rendition}.ts"},
        },
        "segmentName must contain {rendition} and {number}",
    ),
    (
        {
            "name": "a",
            "adaptiveStreaming": {},
            "output": {"fileName": "{inputName}/m.{format}", "variantName": "v.{format}"},
        },
        "variantName must contain {rendition}",
    ),
    (
        {
            "name": "a",
            "adaptiveStreaming": {"format": "dash"},
            "output": {"fileName": "{inputName}/m.{format}", "variantName": "{rendition}.m3u8"},
        },
        "are for HLS",
    ),
    (
        {
            "name": "a",
            "transcode": {},
            "output": {"fileName": "{inputName}.{format}", "segmentName": "{rendition}{number}"},
        },
        "are for HLS",
    ),
    (
        {"name": "a", "analysis": {}, "output": {"fileName": "{inputName}_{rendition}.json"}},
        "fileName",
    ),
    (
        {"name": "a", "snapshot": {"count": 1, "fillType": "pad", "width": 64}},
        "needs width and height",
    ),
    ({"name": "a", "sprite": {"fillType": "crop"}}, "needs width and height"),
    ({"name": "a", "animatedImage": {"fillType": "blur"}}, "needs width and height"),
    (
        {"name": "a", "transcode": {"video": {"fillType": "stretch", "height": 720}}},
        "needs width and height",
    ),
    (
        {"name": "a", "snapshot": {"count": 1, "width": 64, "height": 64, "padColor": "white"}},
        "padColor applies to fillType pad only",
    ),
    ({"name": "a", "sprite": {"fillType": "pad", "height": 64, "padColor": "red"}}, "padColor"),
    (
        {"name": "a", "snapshot": {"count": 1, "watermarks": [{"text": "x"}] * 11}},
        "watermarks",
    ),
    (
        {"name": "a", "sprite": {"watermarks": [{"text": "x", "start": 1, "startFromEnd": 2}]}},
        "set start or startFromEnd, not both",
    ),
    (
        {"name": "a", "animatedImage": {"watermarks": [{"text": "x", "end": 1, "endFromEnd": 2}]}},
        "set end or endFromEnd, not both",
    ),
    (
        {
            "name": "a",
            "transcode": {"watermarks": [{"text": "x", "startFromEnd": 2, "endFromEnd": 3}]},
        },
        "endFromEnd must be less than startFromEnd",
    ),
    (
        {
            "name": "a",
            "snapshot": {
                "count": 1,
                "watermarks": [{"image": {"bucket": "abc", "key": "k"}, "font": "mono"}],
            },
        },
        "watermark.font applies to text only",
    ),
    (
        {"name": "a", "snapshot": {"count": 1, "watermarks": [{"text": "x", "font": "arial"}]}},
        "font",
    ),
]


@pytest.mark.parametrize(("raw", "needle"), INVALID, ids=[n for _, n in INVALID])
def test_invalid_task_is_rejected_with_a_message_naming_the_field(
    raw: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskSpec.model_validate(raw)
    assert needle in str(caught.value)


def _validations(schema: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    if isinstance(schema, dict):
        found += schema.get("x-kubernetes-validations", [])
        for value in schema.values():
            found += _validations(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _validations(value)
    return found


def test_every_cross_field_rule_has_a_cel_twin_in_the_schema() -> None:
    messages = {v["message"] for v in _validations(TaskSpec.model_json_schema(by_alias=True))}
    for needle in (
        "set exactly one of transcode",
        "video.crf and video.bitrate are mutually exclusive",
        "watermark: set exactly one of image and text",
        "watermark.end must be greater",
        "snapshot: set exactly one of times",
        "sizes must be distinct",
        "transcode.video.codec cannot go in this container",
        "transcode.audio.codec cannot go in this container",
        "transcode.container cannot hold the video codec of the preset",
        "transcode.container cannot hold the audio codec of the preset",
        "video.codec copy/none takes no encoding settings",
        "audio.codec copy/none takes no encoding settings",
        "fillType other than fit needs width and height",
        "padColor applies to fillType pad only",
        "watermark: set start or startFromEnd, not both",
        "watermark: set end or endFromEnd, not both",
        "endFromEnd must be less than startFromEnd",
        "watermark.font applies to text only",
        "must contain {inputName}",
        "must contain {number}",
        "{inputName} in a directory",
        "not both",
        "segmentName must contain",
        "variantName must contain",
        "are for HLS",
        "subtitles.style applies to mode burnIn only",
        "transcode.subtitles burnIn needs the video to be encoded",
        "transcode.subtitles soft needs a container that holds subtitles",
        "privacy region end must be greater than start",
        "transcode.privacy needs the video to be encoded",
        "transcode.intro/outro need the video to be encoded",
        "transcode.intro/outro need the audio to be encoded or none",
    ):
        assert any(needle in m for m in messages), needle


def test_schema_has_a_description_on_every_property() -> None:
    schema = TaskSpec.model_json_schema(by_alias=True)
    missing = []
    for name, model in schema["$defs"].items():
        for prop, body in model.get("properties", {}).items():
            if not body.get("description"):
                missing.append(f"{name}.{prop}")
    assert not missing


def test_schema_has_no_free_form_objects_or_mixed_type_unions() -> None:
    text = str(TaskSpec.model_json_schema(by_alias=True))
    assert "additionalProperties': True" not in text
    for union in re.findall(r"'anyOf': (\[.*?\])", text):
        types = set(re.findall(r"'type': '(\w+)'", union)) - {"null"}
        assert len(types) <= 1, union


def test_duplicate_task_names_are_rejected() -> None:
    tasks = [TaskSpec.model_validate(VALID[0]), TaskSpec.model_validate(VALID[0])]
    with pytest.raises(ValueError, match="unique"):
        check_unique_task_names(tasks)


def test_bitrate_strings_parse_to_bits_per_second() -> None:
    assert parse_bitrate("2500k") == 2_500_000
    assert parse_bitrate("2.5M") == 2_500_000
    assert parse_bitrate("128000") == 128_000


def test_explicit_fields_override_the_preset() -> None:
    spec = TranscodeTask.model_validate(
        {"preset": "h264-720p", "video": {"height": 480, "preset": "ultrafast"}}
    )
    resolved = resolve_transcode(spec)
    assert resolved.container == "mp4"
    assert resolved.video is not None
    assert (resolved.video.codec, resolved.video.height, resolved.video.crf) == ("h264", 480, 23)
    assert resolved.video.preset == "ultrafast"
    assert resolved.video.maxrate == "3M"


def test_an_explicit_bitrate_replaces_the_preset_crf() -> None:
    spec = TranscodeTask.model_validate({"preset": "h264-720p", "video": {"bitrate": "1M"}})
    video = resolve_transcode(spec).video
    assert video is not None
    assert (video.crf, video.bitrate) == (None, "1M")


def test_audio_only_container_drops_video_and_picks_its_codec() -> None:
    resolved = resolve_transcode(TranscodeTask.model_validate({"container": "ogg"}))
    assert resolved.video is not None
    assert resolved.audio is not None
    assert (resolved.video.codec, resolved.audio.codec) == ("none", "opus")


def test_preset_codec_in_an_incompatible_explicit_container_is_refused_at_validation() -> None:
    with pytest.raises(ValidationError, match="container 'webm' cannot hold the video codec"):
        TranscodeTask.model_validate({"preset": "h264-720p", "container": "webm"})
    # The resolver keeps its own check for specs built without validation.
    spec = TranscodeTask.model_construct(preset="h264-720p", container="webm")
    with pytest.raises(ValueError, match="cannot go in container 'webm'"):
        resolve_transcode(spec)


def test_preset_codec_table_of_the_spec_agrees_with_the_presets() -> None:
    assert set(PRESET_CODECS) == set(TRANSCODE_PRESETS)
    for name, (_container, video, audio) in TRANSCODE_PRESETS.items():
        assert PRESET_CODECS[name] == (video.codec, audio.codec), name


def test_every_container_and_preset_pair_validates_iff_it_resolves() -> None:
    # The validation-time rule and the resolver agree: no spec that passes
    # validation can fail on its codecs later, in the worker.
    for preset in TRANSCODE_PRESETS:
        for container in CONTAINER_VIDEO_CODECS:
            raw = {"preset": preset, "container": container}
            try:
                spec = TranscodeTask.model_validate(raw)
            except ValidationError:
                with pytest.raises(ValueError, match="cannot go in container"):
                    resolve_transcode(TranscodeTask.model_construct(**raw))  # type: ignore[arg-type]
                continue
            resolve_transcode(spec)


def test_every_preset_resolves_and_is_documented_with_its_settings() -> None:
    doc = (REPO / "docs" / "presets.md").read_text()
    for name, (container, video, audio) in TRANSCODE_PRESETS.items():
        resolve_transcode(TranscodeTask.model_validate({"preset": name}))
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, name
        assert f"| {container} |" in row, name
        if video.height:
            assert f"{video.height}" in row, name
        if audio.bitrate:
            assert audio.bitrate in row, name
    for ladder, (_codec, renditions) in LADDERS.items():
        assert f"`{ladder}`" in doc
        for r in renditions:
            assert f"| `{ladder}` | {r.height} | {r.video_bitrate} |" in doc, (ladder, r.height)


def test_renditions_replace_the_named_ladder() -> None:
    from mediaflow_api.tasks import AdaptiveStreamingTask

    task = AdaptiveStreamingTask.model_validate(
        {"ladder": "hevc-ladder", "renditions": [{"height": 240, "videoBitrate": "300k"}]}
    )
    codec, renditions = resolve_ladder(task)
    assert codec == "h265"
    assert [r.height for r in renditions] == [240]


def test_snapshot_percentages_are_validated_in_python_too() -> None:
    with pytest.raises(ValidationError):
        SnapshotTask.model_validate({"times": ["101%"]})
