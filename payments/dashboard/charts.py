"""Bar charts as inline SVG, drawn on the server: the admin needs no JavaScript and no internet."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 28, 40
# Colour-blind-safe (Okabe-Ito), in the order series are given.
PALETTE = ("#0072B2", "#E69F00", "#D55E00", "#009E73", "#CC79A7", "#56B4E9")
Number = int | float | Decimal


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Number]


def nice_ticks(top: float, *, count: int = 4) -> list[float]:
    """Return round tick values from 0 up to at least `top` (1, 2 or 5 times a power of ten apart)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(multiple * power for multiple in (1, 2, 5, 10) if multiple * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


def tick_label(value: float) -> str:
    """Return an axis label: 1,500 · 25k · 1.2M."""
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.3g}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:.2g}"


def _text(x: float, y: float, text: str, **attributes: str) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attributes.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>'


def bar_chart(
    *, labels: Sequence[str], series: Sequence[Series], title: str, label_every: int | None = None
) -> SafeString:
    """Return an SVG bar chart: one group of bars per label, one bar per series, with axes and a legend.

    Every bar carries its exact value as a tooltip; the page's table beside it is the record.
    """
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max((float(value) for one in series for value in one.values), default=0.0)
    ticks = nice_ticks(top)
    scale = plot_height / ticks[-1]
    groups = max(len(labels), 1)
    group_width = plot_width / groups
    bar_width = group_width * 0.8 / max(len(series), 1)
    # Leave room for about 12 labels on the x axis, whatever the number of bars.
    every = label_every or max(1, math.ceil(groups / 12))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="dashboard-chart" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in ticks:
        y = TOP + plot_height - tick * scale
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(_text(LEFT - 6, y + 4, tick_label(tick), text_anchor="end", font_size="11"))
    for index, label in enumerate(labels):
        x = LEFT + group_width * index + group_width * 0.1
        for number, one in enumerate(series):
            value = float(one.values[index]) if index < len(one.values) else 0.0
            height = value * scale
            parts.append(
                f'<rect x="{x + bar_width * number:.1f}" y="{TOP + plot_height - height:.1f}" '
                f'width="{max(bar_width - 1, 1):.1f}" height="{height:.1f}" '
                f'fill="{PALETTE[number % len(PALETTE)]}">'
                f"<title>{escape(label)} · {escape(one.name)}: {value:,.2f}</title></rect>"
            )
        if index % every == 0:
            parts.append(
                _text(
                    LEFT + group_width * (index + 0.5),
                    HEIGHT - BOTTOM + 16,
                    label,
                    text_anchor="middle",
                    font_size="11",
                )
            )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_height}" y2="{TOP + plot_height}" stroke="#666"/>'
    )
    legend_x = float(LEFT)
    for number, one in enumerate(series):
        parts.append(
            f'<rect x="{legend_x:.1f}" y="8" width="10" height="10" fill="{PALETTE[number % len(PALETTE)]}"/>'
        )
        parts.append(_text(legend_x + 14, 17, one.name, font_size="12"))
        legend_x += 24 + 7 * len(one.name)
    parts.append("</svg>")
    # Every piece of text above went through escape(); the rest is numbers and constants.
    return mark_safe("".join(parts))  # noqa: S308
