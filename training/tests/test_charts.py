"""The server-rendered loss chart."""

import re

from training.charts import HEIGHT, LEFT, RIGHT, TOP, WIDTH, loss_chart, smoothed


def polyline(svg, name):
    points = re.search(rf'<polyline class="{name}" fill="none" points="([^"]+)"', svg).group(1)
    return [tuple(map(float, point.split(","))) for point in points.split()]


def test_it_scales_the_losses_to_fill_the_plot():
    svg = str(loss_chart([[1, 2.0], [2, 1.0], [3, 1.5]]))

    assert svg.startswith('<svg class="loss-chart" viewBox="0 0 640 240"')
    points = polyline(svg, "loss")
    bottom = HEIGHT - 32
    # The first step at the left edge and the highest loss at the top; the last step at
    # the right edge, the lowest loss at the bottom.
    assert points == [(LEFT, TOP), (LEFT + (WIDTH - LEFT - RIGHT) / 2, bottom),
                      (WIDTH - RIGHT, (TOP + bottom) / 2)]
    assert ">2</text>" in svg and ">1</text>" in svg
    assert ">step 1</text>" in svg and ">step 3</text>" in svg
    assert "Training loss, steps 1 to 3: from 2 to 1.5" in svg


def test_it_draws_a_flat_or_single_point_history():
    svg = str(loss_chart([[5, 0.3]]))

    ((x, y),) = polyline(svg, "loss")
    assert x == LEFT and TOP < y < HEIGHT - 32


def test_it_says_when_there_is_no_loss_yet():
    assert "No loss recorded yet" in loss_chart([])


def test_it_averages_over_a_trailing_window():
    assert smoothed([1, 2, 3, 4], 2) == [1, 1.5, 2.5, 3.5]
