"""Segmented WebVTT for HLS: cues parsed from the normalised SubRip file,
split over segments (repeated across a boundary), and the playlists."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from mediaflow_worker.ffmpeg.webvtt_hls import (
    Cue,
    add_subtitle_group,
    add_vtt_adaptation_set,
    master_media_line,
    parse_srt,
    vtt_time,
    webvtt_document,
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


MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_audio",NAME="audio_0",URI="stream_0/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=736930,RESOLUTION=640x360,AUDIO="group_audio"
stream_1/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=296930,RESOLUTION=426x240,AUDIO="group_audio"
stream_2/index.m3u8

"""


def test_every_variant_refers_to_the_subtitle_group_added_last() -> None:
    line = master_media_line("subs/index.m3u8", "eng", "eng")
    out = add_subtitle_group(MASTER, line)
    lines = out.splitlines()
    variants = [x for x in lines if x.startswith("#EXT-X-STREAM-INF:")]
    assert len(variants) == 2
    assert all(v.endswith(',AUDIO="group_audio",SUBTITLES="subs"') for v in variants)
    # Last, so the variants keep their place (custom names number them).
    assert lines[-1] == line
    assert lines[:3] == MASTER.splitlines()[:3]
    assert out.endswith("\n")
    assert not out.endswith("\n\n")
    # Idempotent on the variants: a second group is not added to them.
    assert add_subtitle_group(out, line).count('SUBTITLES="subs"') == 2


def test_the_whole_file_webvtt_holds_every_cue_escaped() -> None:
    doc = webvtt_document(parse_srt(SRT))
    assert doc.startswith("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n")
    assert "Hello <b>&amp;</b> --&gt; you" in doc
    assert "00:00:05.500 --> 00:00:06.200\nTwo\nlines\n" in doc


def test_subrip_markup_becomes_webvtt_markup() -> None:
    srt = (
        "1\n00:00:00,500 --> 00:00:01,500\n"
        '<font face="DejaVu Sans" size="48" color="#ffff00">{\\an8}<B>Styled</B> <i>line</i>'
        "</font> <script> x<y\n\n"
    )
    doc = webvtt_document(parse_srt(srt))
    assert doc.endswith("\n<b>Styled</b> <i>line</i> &lt;script> x&lt;y\n")


MPD = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="urn:mpeg:DASH:schema:MPD:2011 DASH-MPD.xsd" type="static">\n'
    """	<!-- a comment -->
	<Period id="0" start="PT0.0S">
		<AdaptationSet id="0" contentType="video">
			<Representation id="0" mimeType="video/mp4" bandwidth="600000"/>
		</AdaptationSet>
		<AdaptationSet id="1" contentType="audio">
			<Representation id="1" mimeType="audio/mp4" bandwidth="64000"/>
		</AdaptationSet>
		<EventStream schemeIdUri="urn:x"/>
	</Period>
</MPD>
"""
)
NS = "{urn:mpeg:dash:schema:mpd:2011}"


def test_the_mpd_gets_a_text_vtt_adaptation_set_and_keeps_its_namespaces() -> None:
    out = add_vtt_adaptation_set(MPD, "subtitles.vtt", "eng")
    assert out.startswith('<?xml version="1.0" encoding="utf-8"?>\n<MPD xmlns="urn:mpeg')
    # The default namespace stays default (no ns0: prefixes) and xsi keeps its name.
    assert "ns0" not in out
    assert 'xsi:schemaLocation="urn:mpeg:DASH:schema:MPD:2011' in out
    assert "<!-- a comment -->" in out
    root = ET.fromstring(out)  # noqa: S314 - a literal
    period = root.find(f"{NS}Period")
    assert period is not None
    children = [c.tag.removeprefix(NS) for c in period]
    assert children == ["AdaptationSet", "AdaptationSet", "AdaptationSet", "EventStream"]
    added = period.findall(f"{NS}AdaptationSet")[-1]
    assert added.attrib == {
        "id": "2",
        "contentType": "text",
        "mimeType": "text/vtt",
        "lang": "eng",
    }
    role = added.find(f"{NS}Role")
    assert role is not None
    assert role.get("value") == "subtitle"
    base = added.find(f"{NS}Representation/{NS}BaseURL")
    assert base is not None
    assert base.text == "subtitles.vtt"
    # The rest is unchanged.
    assert period.findall(f"{NS}AdaptationSet")[0].get("contentType") == "video"


def test_an_mpd_without_a_period_is_refused() -> None:
    with pytest.raises(ValueError, match="no Period"):
        add_vtt_adaptation_set('<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"/>', "s.vtt", "und")
