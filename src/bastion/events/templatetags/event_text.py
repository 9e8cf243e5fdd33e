"""``{{ event|describe }}``: a security event as a sentence, the same on every log page."""

from django import template

from bastion.events.services import describe_event

register = template.Library()


@register.filter
def describe(event) -> str:
    return describe_event(event)
