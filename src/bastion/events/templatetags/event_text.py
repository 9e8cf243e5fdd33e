"""``{{ event|describe }}``: a security event as a sentence, the same on every log page, in the
reader's language."""

from django import template

from bastion.events.services import describe_event_for_reader

register = template.Library()


@register.filter
def describe(event) -> str:
    return describe_event_for_reader(event)
