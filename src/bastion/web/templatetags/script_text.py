"""``{% script_text %}``: what the site's static scripts say, in the page's language.

The Content-Security-Policy allows no inline script, so the scripts cannot be rendered with
their sentences in them; base.html puts them in a JSON data block (never executed) that the
scripts read, and each script keeps its English as the fallback.
"""

from django import template
from django.utils.html import json_script
from django.utils.translation import gettext as _

register = template.Library()


@register.simple_tag
def script_text():
    return json_script({
        # copy.js
        "copied": _("Copied."),
        "copySelected": _("Selected: press Ctrl+C to copy."),
        # webauthn.js
        "keyCancelled": _("The security key request was cancelled or timed out. Try again."),
        "keyRegistered": _("This security key is already registered to your account."),
        "keyAddress": _("Security keys need this site to be opened through its configured "
                        "address (https, or http://localhost)."),
        "keyFailed": _("The security key could not be used."),
        "keyFailedBecause": _("The security key could not be used: {reason}"),
        "keyUnsupported": _("This browser does not support security keys or passkeys."),
    }, "script-text")
