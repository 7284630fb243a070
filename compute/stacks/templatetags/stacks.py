from django import template

register = template.Library()


@register.filter
def field_label(name: str) -> str:
    """A plan's field as people read it: assigned_to → assigned to."""
    return str(name).replace("_", " ")
