"""Output sizing shared by every task type that takes a size: how the picture
fills a width x height box (``fillType``), the colour of pad bars, and the
portrait rule (``adaptiveOrientation``).

One design for all of them: ``width``/``height`` describe a *landscape* box.
With ``adaptiveOrientation`` the box is turned for sources that display in
portrait, so ``width`` is the long side and ``height`` the short side of the
output whatever the orientation of the source. ``fillType`` says what happens
when the box and the source have different shapes:

- ``fit``: the largest size that fits inside the box, aspect kept (the output
  may be smaller than the box on one side);
- ``stretch``: exactly the box, aspect not kept;
- ``pad``: exactly the box: the picture fitted inside, bars of ``padColor``;
- ``blur``: exactly the box: the picture fitted inside over a blurred copy of
  itself scaled to cover the box;
- ``crop``: exactly the box: scaled to cover it, the middle kept.

Every fill type but ``fit`` needs both ``width`` and ``height``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from mediaflow_api.tasks.common import cel

FillType = Literal["fit", "stretch", "pad", "blur", "crop"]
EXACT_FILL_TYPES: tuple[str, ...] = ("stretch", "pad", "blur", "crop")
# "black", "white" or "#rrggbb" (never free text: it goes into a filter graph).
PAD_COLOR_PATTERN = r"^(black|white|#[0-9a-fA-F]{6})$"

FILL_TYPE_DESCRIPTION = (
    "How the picture fills the width x height box: fit (inside the box, aspect kept; "
    "default), stretch (exactly the box, aspect not kept), pad (exactly the box, bars of "
    "padColor), blur (exactly the box over a blurred, enlarged copy of the picture), crop "
    "(exactly the box, scaled to cover it, the middle kept). All but fit need width and "
    "height; sizes are rounded down to even numbers."
)
PAD_COLOR_DESCRIPTION = "Colour of the bars of fillType pad: black (default), white or '#rrggbb'."


def fill_type_field() -> FillType | None:
    """The ``fillType`` field (None: fit)."""
    result: FillType | None = Field(
        default=None, alias="fillType", description=FILL_TYPE_DESCRIPTION
    )
    return result


def pad_color_field() -> str | None:
    """The ``padColor`` field (None: black)."""
    result: str | None = Field(
        default=None,
        alias="padColor",
        pattern=PAD_COLOR_PATTERN,
        max_length=7,
        description=PAD_COLOR_DESCRIPTION,
    )
    return result


def adaptive_orientation_field(default_on: bool) -> bool | None:
    """The ``adaptiveOrientation`` field; its default differs per task type
    (documented in its description)."""
    default = "true" if default_on else "false"
    result: bool | None = Field(
        default=None,
        alias="adaptiveOrientation",
        description=(
            "When the source displays in portrait, turn the width x height box, so width is "
            "the long side and height the short side of the output (a '1280x720' request "
            f"gives 720x1280 for phone videos). Default {default}."
        ),
    )
    return result


def check_fill(
    where: str,
    fill_type: str | None,
    pad_color: str | None,
    present: dict[str, object],
) -> None:
    """The pydantic twin of ``fill_cels``: an exact fill type needs every size
    field in ``present`` (JSON name -> value), padColor needs fillType pad."""
    if fill_type in EXACT_FILL_TYPES:
        missing = [name for name, value in present.items() if value is None]
        if missing:
            raise ValueError(
                f"{where}.fillType {fill_type} needs width and height: set {', '.join(missing)}"
            )
    if pad_color is not None and fill_type != "pad":
        raise ValueError(f"{where}.padColor applies to fillType pad only")


def fill_cels(where: str, required: list[str]) -> list[dict[str, JsonValue]]:
    """The CEL rules of ``check_fill``; ``required``: the JSON names of the
    size fields that must be set (fields with a default are left out)."""
    has = " && ".join(f"has(self.{name})" for name in required)
    return [
        cel(
            f"!has(self.fillType) || self.fillType == 'fit' || ({has})",
            f"{where}.fillType other than fit needs width and height",
        ),
        cel(
            "!has(self.padColor) || (has(self.fillType) && self.fillType == 'pad')",
            f"{where}.padColor applies to fillType pad only",
        ),
    ]
