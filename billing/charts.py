"""The daily cost chart as plain SVG geometry: the template draws <rect>s, no script and no inline style."""

from datetime import date

from billing.pricing import cents_to_decimal

# The left pad holds the peak label with its currency ("1,234.56 EUR" at 11 px).
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 720, 200, 80, 22, 10


def daily_bars(daily_cents: list[tuple[date, int]], days_in_month: int) -> dict:
    peak = max([cents for _, cents in daily_cents] + [1])
    plot_width = WIDTH - PAD_LEFT
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_width / max(days_in_month, 1)
    bars = []
    for index, (day, cents) in enumerate(daily_cents):
        height = round(plot_height * cents / peak, 1)
        bars.append(
            {
                "x": round(PAD_LEFT + index * slot + slot * 0.15, 1),
                "y": round(PAD_TOP + plot_height - height, 1),
                "width": round(slot * 0.7, 1),
                "height": height,
                "day": day,
                "amount": cents_to_decimal(cents),
                "label_x": round(PAD_LEFT + index * slot + slot / 2, 1),
                "show_label": day.day == 1 or day.day % 5 == 0,
            }
        )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "bars": bars,
        "peak": cents_to_decimal(peak if daily_cents else 0),
        "axis_x": PAD_LEFT,
        "axis_y": HEIGHT - PAD_BOTTOM,
        "top_y": PAD_TOP,
        "label_y": HEIGHT - 6,
        "peak_label_y": PAD_TOP + 10,
    }
