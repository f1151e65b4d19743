"""The loss chart: server-rendered SVG, no JavaScript (the pages' CSP allows no inline
scripts, and a polyline needs none)."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 32  # room for the axis labels


def smoothed(values, window):
    """The trailing moving average of `values` over `window` points."""
    out, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        out.append(total / min(index + 1, window))
    return out


def loss_chart(losses, width=WIDTH, height=HEIGHT):
    """An SVG line chart of a loss history ([[step, loss], ...]): the losses as a light
    polyline scaled to the data, their moving average over it, and the step and loss
    ranges on the axes. Returns safe HTML; a note when there is no loss yet."""
    if not losses:
        return mark_safe('<p class="loss-chart-empty">No loss recorded yet.</p>')
    steps = [step for step, _ in losses]
    values = [loss for _, loss in losses]
    first, last = min(steps), max(steps)
    low, high = min(values), max(values)
    if high - low < 1e-9:  # a flat line sits in the middle
        low, high = low - 0.5, high + 0.5
    plot_width, plot_height = width - LEFT - RIGHT, height - TOP - BOTTOM

    def x(step):
        return LEFT + (step - first) / max(last - first, 1) * plot_width

    def y(loss):
        return TOP + (high - loss) / (high - low) * plot_height

    def points(series):
        return " ".join(f"{x(step):.1f},{y(loss):.1f}"
                        for step, loss in zip(steps, series, strict=True))

    window = max(len(values) // 20, 1)
    bottom, right = TOP + plot_height, LEFT + plot_width
    labels = [  # (x, y, anchor, text)
        (LEFT - 6, TOP + 4, "end", f"{high:.4g}"),
        (LEFT - 6, bottom, "end", f"{low:.4g}"),
        (LEFT, bottom + 18, "start", f"step {first}"),
        (right, bottom + 18, "end", f"step {last}"),
    ]
    return format_html(
        '<svg class="loss-chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-labelledby="loss-chart-title">'
        '<title id="loss-chart-title">Training loss, steps {first} to {last}: '
        "from {start} to {end}</title>"
        '<path class="axes" d="M{left} {top} V{bottom} H{right}" fill="none"/>'
        "{labels}"
        '<polyline class="loss" fill="none" points="{raw}"/>'
        '<polyline class="loss-average" fill="none" points="{average}"/>'
        "</svg>",
        w=width, h=height, first=first, last=last,
        start=f"{values[0]:.4g}", end=f"{values[-1]:.4g}",
        left=LEFT, top=TOP, bottom=bottom, right=right,
        labels=format_html_join(
            "", '<text x="{}" y="{}" text-anchor="{}">{}</text>', labels),
        raw=points(values), average=points(smoothed(values, window)),
    )
