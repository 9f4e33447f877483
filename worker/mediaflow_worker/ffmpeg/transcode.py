"""The ``transcode`` command: encoder options, the held last frame, the
video filter graph and the full command of one output file (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mediaflow_api.tasks import AudioSettings, TranscodeTask, VideoSettings, parse_bitrate
from mediaflow_api.tasks.transcode import output_bit_depth
from mediaflow_worker.ffmpeg.audio import AudioOutput
from mediaflow_worker.ffmpeg.codecs import (
    AC3_MAX_CHANNELS,
    AC3_RATES,
    AUDIO_ENCODERS,
    CONTAINERS,
    FASTSTART_CONTAINERS,
    OPUS_RATES,
    SVTAV1_PRESET,
    VIDEO_ENCODERS,
    VP9_CPU_USED,
)
from mediaflow_worker.ffmpeg.common import (
    DEFAULT_FONT,
    base_args,
    image_input_args,
    input_args,
    output_limit_args,
    seconds,
    strip_metadata_args,
)
from mediaflow_worker.ffmpeg.concat import ClipPart, JoinedAudio, clip_input_args, concat_filters
from mediaflow_worker.ffmpeg.graph import GraphStep, apply_steps
from mediaflow_worker.ffmpeg.sizing import SizePlan, size_chains
from mediaflow_worker.ffmpeg.subtitles import SubtitleTrack, soft_input_args, soft_output_args
from mediaflow_worker.ffmpeg.watermark import WatermarkInput, watermark_filters
from mediaflow_worker.probe import AudioInfo, VideoInfo


@dataclass(frozen=True)
class EncodePass:
    """One pass of a two-pass encode: its number (1 or 2) and the stats
    file prefix both passes share (in the task's scratch directory)."""

    number: int
    log_prefix: Path


def video_codec_args(
    video: VideoSettings,
    container: str,
    fps: float | None,
    tail: TailFrame | None = None,
    encode_pass: EncodePass | None = None,
) -> list[str]:
    """Encoder options for a resolved ``VideoSettings`` (codec not copy/none);
    ``fps``: the source's average rate (for ``gopSeconds`` without ``fps``);
    ``encode_pass``: which pass of a ``twoPass`` encode."""
    codec = video.codec or "h264"
    preset = video.preset or "medium"
    args = ["-c:v", VIDEO_ENCODERS[codec]]
    rate = video.fps or fps
    if codec in ("h264", "h265"):
        args += ["-preset", preset]
        if video.profile is not None:
            args += ["-profile:v", video.profile]
        if video.bframes is not None:
            args += ["-bf", str(video.bframes)]
        if codec == "h264" and video.level is not None:
            args += ["-level:v", video.level]
        if codec == "h265":
            args += ["-x265-params", ":".join(x265_params(video, rate, encode_pass))]
            if container in ("mp4", "mov"):
                # Apple players only accept HEVC in MP4/MOV tagged hvc1.
                args += ["-tag:v", "hvc1"]
    elif codec == "vp9":
        args += ["-deadline", "good", "-cpu-used", str(VP9_CPU_USED[preset]), "-row-mt", "1"]
    elif codec == "av1":
        args += ["-preset", str(SVTAV1_PRESET[preset])]
    if video.gop_seconds is not None:
        args += gop_seconds_args(codec, video.gop_seconds, rate)
    args += rate_control_args(video, codec)
    if encode_pass is not None and codec != "h265":  # x265 gets it in -x265-params
        args += ["-pass", str(encode_pass.number), "-passlogfile", str(encode_pass.log_prefix)]
    if video.gop is not None:
        args += ["-g", str(video.gop)]
    # libvpx's two-pass rate control reads the frame rate off the encoder's
    # time base: with the input's (1/12800) it spends an eighth of the
    # bitrate. Its frames are timed on the average rate instead.
    frame_time_base = not (codec == "vp9" and encode_pass is not None)
    if video.fps is None and tail is not None:
        # The tail frame's graph ends in the source's time base; -r only
        # tells the encoder (and the muxer, for the last sample) the average
        # rate, vfr keeps every timestamp as it is.
        args += ["-fps_mode", "vfr", "-r", f"{tail.frame_rate:.6f}"]
        if frame_time_base:
            args += ["-enc_time_base:v", tail.time_base]
    elif video.fps is None:
        # Keep variable frame rate as it is: the mp4 muxer defaults to CFR,
        # which turns a VFR screen recording (r=57600) into a frame storm.
        # The input's time base keeps vfr from merging close frames.
        args += ["-fps_mode", "vfr"]
        if frame_time_base:
            args += ["-enc_time_base:v", "-1"]
    return args


def gop_frames(gop_seconds: float, rate: float | None) -> int | None:
    """``gopSeconds`` in frames at ``rate`` (None: rate unknown)."""
    if not rate or rate <= 0:
        return None
    return max(1, round(gop_seconds * rate))


def rate_control_args(video: VideoSettings, codec: str) -> list[str]:
    """Quality or bitrate options: crf, average bitrate (vbr, optionally
    capped) or constant bitrate (cbr: min = max = target, a VBV buffer)."""
    args: list[str] = []
    if video.rate_control == "cbr":
        assert video.bitrate is not None
        target = str(parse_bitrate(video.bitrate))
        # One second of buffer unless told: tight enough for broadcast muxers.
        buffer = str(parse_bitrate(video.bufsize)) if video.bufsize else target
        args += ["-b:v", target, "-minrate", target, "-maxrate", target, "-bufsize", buffer]
        if codec == "h264":
            # HRD signalling and filler data: the stream is CBR on the wire.
            args += ["-nal-hrd", "cbr"]
        return args
    if video.crf is not None:
        args += ["-crf", str(video.crf)]
        if codec == "vp9" and video.bitrate is None:
            # libvpx needs -b:v 0 for pure constant-quality mode.
            args += ["-b:v", "0"]
    if video.bitrate is not None:
        args += ["-b:v", str(parse_bitrate(video.bitrate))]
    if video.maxrate is not None:
        maxrate = parse_bitrate(video.maxrate)
        bufsize = parse_bitrate(video.bufsize) if video.bufsize else 2 * maxrate
        args += ["-maxrate", str(maxrate), "-bufsize", str(bufsize)]
    return args


def x265_params(
    video: VideoSettings, rate: float | None, encode_pass: EncodePass | None = None
) -> list[str]:
    """The ``-x265-params`` entries of a resolved h265 encode (level, a
    closed, scene-cut-free GOP, strict CBR and the two-pass stats file have
    no generic ffmpeg option for libx265)."""
    params = ["log-level=error"]
    if video.rate_control == "cbr":
        params += ["strict-cbr=1", "hrd=1"]
    if encode_pass is not None:
        stats = str(encode_pass.log_prefix)
        if ":" in stats or "=" in stats:
            # ":" separates the entries: such a scratch path cannot be said here.
            raise ValueError(f"two-pass stats path {stats!r} cannot go into -x265-params")
        params += [f"pass={encode_pass.number}", f"stats={stats}.log"]
    if video.level is not None:
        params.append(f"level-idc={video.level}")
    if video.gop_seconds is not None:
        params += ["scenecut=0", "open-gop=0"]
        frames = gop_frames(video.gop_seconds, rate)
        if frames is not None:
            params += [f"keyint={frames}", f"min-keyint={frames}"]
    return params


def gop_seconds_args(codec: str, gop_seconds: float, rate: float | None) -> list[str]:
    """Keyframes at every multiple of ``gop_seconds`` of output time, in a
    way segmenters can cut on: IDR frames, closed GOPs, no scene-cut extras.

    The frame count (at the output or source ``rate``) bounds the GOP; the
    forced keyframes keep the grid exact when the rate is fractional or
    variable (x264/x265 restart their count at a forced IDR)."""
    args: list[str] = []
    frames = gop_frames(gop_seconds, rate)
    if frames is not None and codec != "h265":  # x265 gets keyint in -x265-params
        args += ["-g", str(frames), "-keyint_min", str(frames)]
    if codec == "h264":
        args += ["-sc_threshold", "0", "-flags", "+cgop"]
    if codec in ("h264", "h265"):
        args += ["-forced-idr", "1"]
    args += ["-force_key_frames", f"expr:gte(t,n_forced*{gop_seconds:g})"]
    return args


def audio_codec_args(
    audio: AudioSettings,
    source_rate: int | None,
    source_channels: int | None,
    *,
    stream: int | None = None,
    keep_rate: bool = False,
) -> list[str]:
    """Encoder options for a resolved ``AudioSettings`` (codec not copy/none).

    ``stream``: the output audio stream these options are for (``-c:a:1``…),
    when there are several; ``keep_rate``: write the source rate explicitly
    (loudnorm resamples to 192 kHz on its way)."""
    codec = audio.codec or "aac"
    spec = "" if stream is None else f":{stream}"
    args = [f"-c:a{spec}", AUDIO_ENCODERS[codec]]
    if codec in ("aac", "opus", "mp3", "ac3", "eac3") and audio.bitrate:
        args += [f"-b:a{spec}", str(parse_bitrate(audio.bitrate))]
    rate = audio.sample_rate or (source_rate if keep_rate else None)
    if codec == "opus" and (rate or source_rate or 48000) not in OPUS_RATES:
        rate = 48000  # Opus only runs at 8/12/16/24/48 kHz.
    if codec == "mp3" and (rate or source_rate or 44100) > 48000:
        rate = 48000  # MP3 tops out at 48 kHz.
    if codec in ("ac3", "eac3") and (rate or source_rate or 48000) not in AC3_RATES:
        rate = 48000  # (E-)AC-3 runs at 32, 44.1 and 48 kHz only.
    if rate:
        args += [f"-ar:a{spec}" if spec else "-ar", str(rate)]
    channels = audio.channels
    if channels is None and codec in ("opus", "mp3") and (source_channels or 0) > 2:
        channels = 2  # downmix: these encoders (as used here) take stereo at most
    if codec in ("ac3", "eac3") and (channels or source_channels or 0) > AC3_MAX_CHANNELS:
        channels = AC3_MAX_CHANNELS  # 5.1 at most
    if channels:
        args += [f"-ac:a{spec}" if spec else "-ac", str(channels)]
    return args


def audio_outputs_args(settings: AudioSettings, outputs: Sequence[AudioOutput]) -> list[str]:
    """Output options of the selected audio tracks: each mapped, filtered by
    its own simple graph (loudness; kept out of the video's -filter_complex
    so both passes of a two-pass encode see the same video graph), encoded
    or copied, and tagged with its language."""
    args: list[str] = []
    for k, output in enumerate(outputs):
        track = output.track
        args += ["-map", f"0:a:{track.index}"]
        if output.filter is not None:
            args += [f"-filter:a:{k}", output.filter]
        if settings.codec == "copy":
            args += [f"-c:a:{k}", "copy"]
        else:
            args += audio_codec_args(
                settings,
                track.sample_rate,
                track.channels,
                stream=k,
                keep_rate=output.filter is not None,
            )
        if track.language is not None:
            args += [f"-metadata:s:a:{k}", f"language={track.language}"]
    return args


@dataclass(frozen=True)
class TailFrame:
    """The held last frame of a variable-frame-rate input, fed again as an
    extra input so the output keeps its screen time.

    ffmpeg 5.1 forgets how long a frame lasts once it is decoded: the last
    frame of a screen recording, on screen for 1.57 s, comes out lasting one
    average frame interval, and the output is that much too short. The same
    frame, decoded once more from ``input_index`` and stamped ``at`` seconds
    (output time), ends the video where the source ends.
    """

    input_index: int
    seek: float  # input -ss of the extra input: just before the last frame
    at: float  # output timestamp of the repeated frame
    frame_rate: float  # -r for the encoder: the last sample lasts 1/frame_rate
    time_base: str  # the source's time base (keeps VFR timestamps exact)


def plan_tail_frame(
    *,
    last_pts: float,
    end: float,
    start_time: float,
    trim_start: float,
    frame_rate: float | None,
    out_rate: float | None,
    time_base: str | None,
    input_index: int,
) -> TailFrame | None:
    """A ``TailFrame`` when the source's last frame is held for much longer
    than its average frame (``frame_rate``; times in the source's timeline),
    None otherwise. ``out_rate``: the constant output rate, if one is set."""
    if not frame_rate or frame_rate <= 0:
        return None
    hold = end - last_pts
    if hold <= max(2.5 / frame_rate, 0.1):
        return None
    rate = out_rate or frame_rate
    interval = 1.0 / rate
    last = last_pts - start_time  # where ffmpeg's input -ss counts from
    if trim_start >= last:
        return None
    return TailFrame(
        input_index=input_index,
        seek=max(0.0, last - 0.001),
        at=round(end - start_time - trim_start - interval, 6),
        frame_rate=rate,
        time_base=time_base or "1/90000",
    )


# zscale's names for the colour properties an HDR source may declare; anything
# else falls back to BT.2020 (what HDR10 and HLG use).
_ZSCALE_PRIMARIES = ("bt2020", "bt709", "smpte432", "smpte431", "bt470bg", "smpte170m")
_ZSCALE_MATRICES = ("bt2020nc", "bt2020c", "bt709", "bt470bg", "smpte170m")


@dataclass(frozen=True)
class ColorPlan:
    """How a transcode treats bit depth and colour: the graph's final pixel
    format, an HDR-to-SDR chain (after scaling) and the colour tags the
    encoder writes into the stream."""

    pix_fmt: str = "yuv420p"
    tonemap: str | None = None
    tags: tuple[str, ...] = ()


def tonemap_chain(source: VideoInfo) -> str:
    """Filters converting an HDR (PQ/HLG) frame to SDR BT.709: to linear
    light (100 nits peak), hable curve in float RGB, back to BT.709 limited
    range. Names come from a whitelist, never from the file as they are."""
    assert source.color_transfer in ("smpte2084", "arib-std-b67")
    primaries = source.color_primaries if source.color_primaries in _ZSCALE_PRIMARIES else "bt2020"
    matrix = source.color_space if source.color_space in _ZSCALE_MATRICES else "bt2020nc"
    in_range = "pc" if source.color_range == "pc" else "tv"
    return (
        f"zscale=tin={source.color_transfer}:pin={primaries}:min={matrix}:rin={in_range}"
        ":t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
        "zscale=t=bt709:m=bt709:r=tv"
    )


def plan_color(video: VideoSettings, source: VideoInfo) -> ColorPlan:
    """Bit depth and HDR handling of a resolved encode of ``source``:
    ``hdr: passthrough`` keeps 10 bits and the source's colour signalling,
    otherwise an HDR source is tone-mapped to SDR BT.709."""
    pix_fmt = "yuv420p10le" if output_bit_depth(video) == 10 else "yuv420p"
    if video.hdr == "passthrough":
        tags: list[str] = []
        for flag, value in (
            ("-color_primaries", source.color_primaries),
            ("-color_trc", source.color_transfer),
            ("-colorspace", source.color_space),
            ("-color_range", source.color_range),
        ):
            if value is not None:
                tags += [flag, value]
        return ColorPlan(pix_fmt, None, tuple(tags))
    if source.is_hdr:
        bt709 = ("-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709")
        return ColorPlan(pix_fmt, tonemap_chain(source), (*bt709, "-color_range", "tv"))
    return ColorPlan(pix_fmt)


def transcode_video_graph(
    size: tuple[int, int],
    fps: float | None,
    marks: Sequence[WatermarkInput],
    font: str = DEFAULT_FONT,
    tail: TailFrame | None = None,
    color: ColorPlan | None = None,
    *,
    pre_steps: Sequence[GraphStep] = (),
    post_steps: Sequence[GraphStep] = (),
    decoded_start: float | None = None,
    sizing: SizePlan | None = None,
) -> str:
    """The -filter_complex of a transcode: scale (or ``sizing``'s exact fill:
    pad, crop, blur...), tone mapping, fps, ``pre_steps`` (blurred regions),
    watermarks, ``post_steps`` (burned-in subtitles), the output pixel format
    (``color``; default 8-bit 4:2:0). ``decoded_start``: the input was not
    seeked; drop what comes before this second here and restart the clock at
    0, as an input seek would."""
    color = color or ColorPlan()
    w, h = size
    source = "[0:V:0]"
    chains = []
    if decoded_start is not None:
        chains.append(f"[0:V:0]trim=start={seconds(decoded_start)},setpts=PTS-STARTPTS[from]")
        source = "[from]"
    if tail is not None:
        chains += [
            f"[{tail.input_index}:V:0]trim=end_frame=1,setpts={tail.at:.6f}/TB[tail]",
            f"[0:V:0][tail]interleave,settb={tail.time_base}[src]",
        ]
        source = "[src]"
    tonemap = f",{color.tonemap}" if color.tonemap else ""
    rate = f",fps={fps:g}" if fps else ""
    if sizing is None or sizing.fill == "fit":
        chains.append(f"{source}scale={w}:{h},setsar=1{tonemap}{rate}[base]")
    else:
        chains += size_chains(sizing, source.strip("[]"), "sized")
        chains.append("[sized]" + ((tonemap + rate).lstrip(",") or "null") + "[base]")
    pre_chains, label = apply_steps(pre_steps, "base")
    chains += pre_chains
    wm_chains, label = watermark_filters(marks, size, label, font)
    chains += wm_chains
    post_chains, label = apply_steps(post_steps, label)
    chains += post_chains
    chains.append(f"[{label}]format={color.pix_fmt}[vout]")
    return ";".join(chains)


def _audio_trim(start: float) -> str:
    """The audio twin of the video's decoded start (see ``transcode_video_graph``)."""
    return f"atrim=start={seconds(start)},asetpts=PTS-STARTPTS"


def _join_filters(first: str, then: str | None) -> str:
    return first if then is None else f"{first},{then}"


def transcode_args(
    spec: TranscodeTask,
    path: Path,
    demuxer: str,
    max_pixels: int,
    *,
    video: VideoInfo | None,
    audio: AudioInfo | None,
    size: tuple[int, int] | None,
    marks: Sequence[WatermarkInput] = (),
    tail: TailFrame | None = None,
    font: str = DEFAULT_FONT,
    max_output_bytes: int,
    out: Path,
    pre_steps: Sequence[GraphStep] = (),
    post_steps: Sequence[GraphStep] = (),
    soft_subtitles: SubtitleTrack | None = None,
    subtitle_language: str | None = None,
    intro: ClipPart | None = None,
    outro: ClipPart | None = None,
    joined_audio: JoinedAudio | None = None,
    encode_pass: EncodePass | None = None,
    audio_outputs: Sequence[AudioOutput] | None = None,
    seek_by_decoding: bool = False,
    sizing: SizePlan | None = None,
) -> list[str]:
    """The full command of a resolved transcode (``presets.resolve_transcode``).

    ``video``/``audio``: the source streams that go into the output (None:
    none, or dropped); ``size``: the output frame of an encoded video;
    ``marks``: watermarks, image ones carrying their file; ``tail``: the held
    last frame, fed again as the input after the watermark images;
    ``pre_steps``/``post_steps``: extra steps of the video graph (see
    ``transcode_video_graph``); ``soft_subtitles``: a normalised sidecar
    muxed as a subtitle stream (its input comes after every other);
    ``intro``/``outro``: clips joined before/after an encoded video (their
    input indices are assigned here; the video must have a constant
    ``fps``), with every part's audio converted to ``joined_audio``;
    ``encode_pass``: a pass of ``twoPass`` (the first one analyses the video
    only and writes nothing but its stats file); ``audio_outputs``: the
    selected audio tracks and their loudness filters (None: the first track,
    as ``audio`` describes it; not with a join, whose sound is the joined
    first track); ``seek_by_decoding``: reach ``trim.start`` by decoding from
    the beginning (filters drop what comes before it) instead of an input
    seek, which finds no picture in a stream without a keyframe near it (no
    held last frame, no join); ``sizing``: how the picture fills ``size``
    (None: scaled to it)."""
    settings_v, settings_a = spec.video, spec.audio
    assert spec.container is not None
    assert settings_v is not None
    assert settings_a is not None
    start = spec.trim.start if spec.trim else None
    duration = spec.trim.duration if spec.trim else None
    joining = video is not None and settings_v.codec != "copy" and (intro or outro) is not None
    # Joined parts are cut on the input: an output -t would cut the outro.
    main_duration = duration if joining else None
    decoded_start = None
    if seek_by_decoding and start:
        assert tail is None, "seeking by decoding keeps no held last frame"
        assert not joining, "seeking by decoding joins no intro/outro"
        decoded_start, start = start, None
    args = [
        *base_args(),
        *input_args(path, demuxer, max_pixels, start=start, duration=main_duration),
    ]
    inputs = 1
    video_out: list[str] = []
    audio_label: str | None = None
    first_pass = encode_pass is not None and encode_pass.number == 1
    if video is not None and settings_v.codec == "copy":
        video_out = ["-map", "0:V:0", "-c:v", "copy"]
    elif video is not None:
        assert size is not None
        for mark in marks:
            if mark.image_path is not None:
                args += image_input_args(mark.image_path)
                inputs += 1
        if tail is not None:
            args += input_args(path, demuxer, max_pixels, start=tail.seek)
            inputs += 1
        color = plan_color(settings_v, video)
        graph = transcode_video_graph(
            size,
            settings_v.fps,
            marks,
            font,
            tail,
            color,
            pre_steps=pre_steps,
            post_steps=post_steps,
            decoded_start=decoded_start,
            sizing=sizing,
        )
        video_label = "vout"
        if joining:
            assert settings_v.fps is not None, "joined parts need one constant frame rate"
            # The first pass of a two-pass encode analyses the video alone.
            join_sound = audio is not None and not first_pass
            clips = []
            for clip in (intro, outro):
                if clip is not None:
                    clip = replace(clip, input_index=inputs)
                    args += clip_input_args(clip, max_pixels)
                    inputs += 1
                clips.append(clip)
            chains, video_label, audio_label = concat_filters(
                clips[0],
                clips[1],
                size,
                settings_v.fps,
                joined_audio if join_sound else None,
                "vout",
                "0:a:0" if join_sound else None,
            )
            graph = ";".join([graph, *chains])
        video_out = ["-filter_complex", graph, "-map", f"[{video_label}]"]
        video_out += video_codec_args(settings_v, spec.container, video.fps, tail, encode_pass)
        video_out += color.tags
    if first_pass:
        args += video_out
        if duration and not joining:
            args += ["-t", seconds(duration)]
        return [*args, "-an", "-f", "null", "-"]
    if soft_subtitles is not None:
        # Inputs come before every output option (they would apply to it).
        if joining and intro is not None:
            # The cues belong to the main part, which starts after the intro.
            args += ["-itsoffset", seconds(intro.duration)]
        args += soft_input_args(soft_subtitles)
    args += video_out
    if audio_label is not None:
        assert audio is not None
        args += ["-map", f"[{audio_label}]"]
        args += audio_codec_args(settings_a, audio.sample_rate, audio.channels)
    elif audio_outputs is not None:
        if decoded_start is not None:
            audio_outputs = [
                replace(o, filter=_join_filters(_audio_trim(decoded_start), o.filter))
                for o in audio_outputs
            ]
        args += audio_outputs_args(settings_a, audio_outputs)
    elif audio is not None:
        args += ["-map", "0:a:0"]
        if decoded_start is not None:
            args += ["-filter:a:0", _audio_trim(decoded_start)]
        if settings_a.codec == "copy":
            args += ["-c:a", "copy"]
        else:
            args += audio_codec_args(settings_a, audio.sample_rate, audio.channels)
    if soft_subtitles is not None:
        args += soft_output_args(soft_subtitles, inputs, spec.container, subtitle_language)
    if duration and not joining:
        args += ["-t", seconds(duration)]
    muxer, _ = CONTAINERS[spec.container]
    if spec.faststart and spec.container in FASTSTART_CONTAINERS:
        args += ["-movflags", "+faststart"]
    args += strip_metadata_args()
    args += output_limit_args(max_output_bytes)
    args += ["-f", muxer, str(out)]
    return args
