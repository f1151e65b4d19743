from django import template

from training.charts import loss_chart as draw_loss_chart

register = template.Library()


@register.filter
def loss_chart(losses):
    """{{ run.losses|loss_chart }}: the SVG loss chart."""
    return draw_loss_chart(losses)
