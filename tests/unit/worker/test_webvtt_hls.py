"""Segmented WebVTT for HLS: cues parsed from the normalised SubRip file,
split over segments (repeated across a boundary), and the playlists."""

from __future__ import annotations

import pytest

from mediaflow_worker.ffmpeg.webvtt_hls import (
    Cue,
    master_media_line,
    parse_srt,
    vtt_time,
    webvtt_playlist,
    webvtt_segments,
)

pytestmark = pytest.mark.unit

SRT = (
    "1\n00:00:01,000 --> 00:00:02,500\nHello <b>&</b> --> you\n\n"
    "2\r\n00:00:05,500 --> 00:00:06,200\r\nTwo\r\nlines\r\n\r\n"
    "3\n00:01:00,000 --> 00:01:01,000\n\n"
)


def test_srt_cues_are_parsed_and_empty_ones_dropped() -> None:
    assert parse_srt(SRT) == [
        Cue(1.0, 2.5, "Hello <b>&</b> --> you"),
        Cue(5.5, 6.2, "Two\nlines"),
    ]
    assert vtt_time(3723.5) == "01:02:03.500"


def test_cues_go_to_every_segment_they_overlap() -> None:
    cues = [Cue(1.0, 2.5, "a"), Cue(3.9, 4.1, "b < c")]
    segments = webvtt_segments(cues, 2.0, 5.0, mpegts=126000)
    assert len(segments) == 3
    head = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n"
    assert segments[0] == head + "\n00:00:01.000 --> 00:00:02.500\na\n"
    assert segments[1] == (
        head + "\n00:00:01.000 --> 00:00:02.500\na\n\n00:00:03.900 --> 00:00:04.100\nb &lt; c\n"
    )
    assert segments[2] == head + "\n00:00:03.900 --> 00:00:04.100\nb &lt; c\n"
    assert webvtt_segments([], 6, 6) == ["WEBVTT\n"]


def test_playlist_lists_the_segments_with_their_lengths() -> None:
    text = webvtt_playlist(["s0.vtt", "s1.vtt", "s2.vtt"], 2.0, 5.0)
    assert "#EXT-X-TARGETDURATION:2\n" in text
    assert "#EXTINF:2.000,\ns0.vtt\n#EXTINF:2.000,\ns1.vtt\n#EXTINF:1.000,\ns2.vtt\n" in text
    assert text.endswith("#EXT-X-ENDLIST\n")
    assert master_media_line("subs/eng.m3u8", "eng", "English") == (
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="eng",'
        'DEFAULT=NO,AUTOSELECT=YES,URI="subs/eng.m3u8"'
    )
