"""The ``sprite`` task: thumbnail sheets plus a WebVTT index for players."""

from __future__ import annotations

from dataclasses import replace

from mediaflow_api.tasks import SpriteTask
from mediaflow_worker.errors import ProcessingError
from mediaflow_worker.ffmpeg.codecs import IMAGE_ENCODERS, IMAGE_EXTENSIONS
from mediaflow_worker.ffmpeg.sizing import plan_size
from mediaflow_worker.ffmpeg.sprite import (
    SpritePlan,
    count_thumbnails,
    plan_sprite,
    sprite_args,
    sprite_vtt,
)
from mediaflow_worker.process import run_ffmpeg
from mediaflow_worker.tasks import OutputFile, TaskContext, TaskNotApplicable
from mediaflow_worker.tasks._watermarks import prepare_watermarks


def required_encoders(spec: SpriteTask) -> set[str]:
    """The image encoder of the sheets' format."""
    return {IMAGE_ENCODERS[spec.format]}


def run(spec: SpriteTask, ctx: TaskContext) -> list[OutputFile]:
    """``sprite-001.jpg``... (columns x rows thumbnails each) and ``sprite.vtt``."""
    display = ctx.display_size()
    if ctx.duration <= 0:
        raise TaskNotApplicable("the input has no duration to index")
    plan = plan_sprite(
        ctx.duration,
        display,
        interval=spec.interval_seconds,
        columns=spec.columns,
        rows=spec.rows,
        width=spec.width,
        max_sheets=spec.max_sheets,
    )
    sizing = None
    if spec.height is not None or spec.fill_type is not None or spec.adaptive_orientation:
        # The thumbnail box: fit (the default) keeps aspect inside
        # width x height; the exact fill types give exactly that size.
        sizing = plan_size(
            *display,
            spec.width,
            spec.height,
            fill=spec.fill_type,
            pad_color=spec.pad_color,
            adaptive_orientation=bool(spec.adaptive_orientation),
        )
        plan = replace(plan, thumb_w=sizing.frame[0], thumb_h=sizing.frame[1])
    marks = prepare_watermarks(
        spec.watermarks, ctx, (plan.thumb_w, plan.thumb_h), ctx.duration or None
    )
    ext = IMAGE_EXTENSIONS[spec.format]
    pattern = ctx.out_dir / f"sprite-%03d.{ext}"
    # Outside out_dir: the count is ours, not an output.
    count_file = ctx.scratch / f"{ctx.task_name}-thumbnails.crc"
    args = sprite_args(
        ctx.input_path,
        ctx.probe.demuxer,
        ctx.limits.max_pixels,
        plan,
        spec.format,
        pattern,
        count_file,
        sizing=sizing,
        marks=marks,
        font=ctx.font,
    )
    run_ffmpeg(args, label=ctx.task_name, expected_seconds=ctx.duration, deadline=ctx.deadline)
    sheets = sorted(ctx.out_dir.glob(f"sprite-*.{ext}"))
    thumbs = count_thumbnails(count_file.read_text()) if count_file.exists() else 0
    if not sheets or thumbs == 0:
        raise ProcessingError(
            f"{ctx.task_name}: ffmpeg wrote {len(sheets)} sprite sheet(s) holding "
            f"{thumbs} thumbnail(s) from {ctx.duration:.3f} s of video"
        )
    # The index covers exactly the thumbnails that were drawn.
    per_sheet = plan.columns * plan.rows
    thumbs = min(thumbs, plan.thumbs, len(sheets) * per_sheet)
    plan = SpritePlan(**{**plan.__dict__, "thumbs": thumbs, "sheets": len(sheets)})
    vtt = ctx.out_dir / "sprite.vtt"
    vtt.write_text(sprite_vtt(plan, ctx.duration, [s.name for s in sheets]), encoding="utf-8")
    sheet_w, sheet_h = plan.thumb_w * plan.columns, plan.thumb_h * plan.rows
    outputs = [OutputFile(s, {"width": sheet_w, "height": sheet_h}) for s in sheets]
    outputs.append(
        OutputFile(
            vtt,
            {
                "thumbnails": thumbs,
                "intervalSeconds": round(plan.interval, 3),
                "thumbnailWidth": plan.thumb_w,
                "thumbnailHeight": plan.thumb_h,
            },
        )
    )
    return outputs
