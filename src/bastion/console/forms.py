"""What every console form reads the same way."""

from __future__ import annotations

from django.utils.translation import gettext as _

from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events.services import RequestInfo


def form_field(request, name: str, limit: int = 200) -> str:
    """A form field as one line; refused when longer than ``limit`` rather than cut, so that
    nothing is ever done to a name other than the one typed."""
    value = request.POST.get(name) or ""
    if len(value) > limit:
        raise ValidationError(_("The {name} is too long: at most {limit} characters.")
                              .format(name=name, limit=limit))
    return one_line(value, limit)


def request_info(request) -> RequestInfo:
    return RequestInfo.from_request(request)
