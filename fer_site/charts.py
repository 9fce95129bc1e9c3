"""A small server-side SVG line chart, so admin pages need no script and work offline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

# One colour per mood, readable on white, stable between pages.
MOOD_COLOURS = {
    "angry": "#c0392b",
    "disgust": "#7d8a2e",
    "fear": "#8e44ad",
    "happy": "#e6a700",
    "sad": "#2e6fb7",
    "surprise": "#e67e22",
    "neutral": "#7f8c8d",
    "uncertain": "#b0a8b9",
    "no_face": "#d5d8dc",
    "no_camera": "#5d6d7e",
}


def line_chart_svg(
    *,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    width: int = 760,
    height: int = 260,
    title: str = "",
    colours: Mapping[str, str] | None = None,
    y_max: float | None = None,
    legend_totals: bool = True,
    names: Mapping[str, str] | None = None,
) -> str:
    """Return an SVG document drawing one line per series over ``labels`` (x) with a shared y axis.

    Counts by default (the y axis starts at a round number, the legend shows totals); pass
    ``y_max`` and ``legend_totals=False`` for rates such as accuracy. ``names`` gives a series a
    legend name other than its key (its colour stays the key's).
    """
    names = names or {}
    colours = MOOD_COLOURS if colours is None else colours
    legends = {
        key: f"{names.get(key, key)}{f' ({sum(values)})' if legend_totals else ''}"
        for key, values in series.items()
    }
    # The legend sits right of the plot: room for its longest entry (about 7 px a character at 12 px),
    # up to a third of the width.
    longest = max((len(text) for text in legends.values()), default=0)
    right = max(120, min(40 + 7 * longest, width // 3))
    left, top, bottom = 44, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(labels)
    peak = max((max(values) for values in series.values() if len(values)), default=0)
    y_max = y_max if y_max is not None else _nice_ceiling(peak)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / y_max

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title or "Chart")}" class="attune-chart">'
    ]
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    for step in range(5):
        value = y_max * step / 4
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="#e3e3e3" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
            f"{value:g}</text>"
        )
    label_every = max(1, n // 8)
    for i, label in enumerate(labels):
        if i % label_every == 0 or i == n - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle" '
                f'fill="#555">{escape(label)}</text>'
            )
    legend_y = top + 4
    for key, values in series.items():
        colour = colours.get(key, "#333")
        name = names.get(key, key)
        if len(values) and any(v != 0 for v in values):
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
            if n == 1:
                parts.append(f'<circle cx="{x(0):.1f}" cy="{y(values[0]):.1f}" r="3" fill="{colour}"/>')
            else:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
                    f"<title>{escape(name)}</title></polyline>"
                )
        parts.append(
            f'<rect x="{width - right + 12}" y="{legend_y}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{width - right + 30}" y="{legend_y + 10}" font-size="12" fill="#333">'
            f"{escape(legends[key])}</text>"
        )
        legend_y += 18
    parts.append("</svg>")
    return "".join(parts)


def _nice_ceiling(value: float) -> float:
    """Return a round axis maximum at or above ``value`` (1, 2, 5 × 10^k), at least 4."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(int(value))) - 1)
    for factor in (1, 2, 5, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude
