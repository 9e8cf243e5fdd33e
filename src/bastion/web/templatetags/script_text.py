"""``{% script_text %}``: what the site's static scripts say, in the page's language.

The Content-Security-Policy allows no inline script, so the scripts cannot be rendered with
their sentences in them; base.html puts them, as JSON, in a <meta> element (no <script>
element at all, not even a data block) that the scripts read, and each script keeps its
English as the fallback.
"""

import json

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.simple_tag
def script_text():
    # Autoescaped into the attribute by the template engine, like any simple tag's result.
    return json.dumps({
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
    }, ensure_ascii=False)
