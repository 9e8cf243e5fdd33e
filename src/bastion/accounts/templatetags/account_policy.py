"""``{% next_step message %}``: the link that fixes what a policy refusal names.

A refusal because the account has no second factor (or no verified address) is followed by
a link to the page where the reader adds one, wherever the refusal is shown: a form's error,
a notice, the 403 page. The messages are matched against the constants that produce them,
in the reader's language (the one the refusal was written in), so a reworded or translated
message keeps its link.
"""

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext

from bastion.accounts import reauth, services

register = template.Library()

_SECOND_FACTOR = (services.NEEDS_SECOND_FACTOR, services.NEEDS_TWO_FACTOR_FIRST,
                  reauth.NEEDS_SECOND_FACTOR_MESSAGE)
_EMAIL = (services.NEEDS_VERIFIED_EMAIL, services.NEEDS_VERIFIED_EMAIL_FOR_2FA)


@register.simple_tag
def next_step(message) -> str:
    message = str(message or "")
    if any(str(text) in message for text in _SECOND_FACTOR):
        return format_html(' <a href="{}" class="next-step">{}</a>', reverse("accounts:two_factor"),
                           gettext("Set up two-factor authentication."))
    if any(str(text) in message for text in _EMAIL):
        return format_html(' <a href="{}" class="next-step">{}</a>', reverse("accounts:emails"),
                           gettext("Verify your email address."))
    return ""
