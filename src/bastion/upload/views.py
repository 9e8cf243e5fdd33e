"""``/legacy/``: the upload endpoint every Python publishing tool speaks."""

from __future__ import annotations

import logging

from django.views.decorators.csrf import csrf_exempt

from bastion import metrics
from bastion.core.errors import ValidationError
from bastion.ops import outages
from bastion.packaging.models import File
from bastion.tokens.services import TokenError

from .pipeline import handle_upload
from .responses import error_response, success_response

logger = logging.getLogger(__name__)

NOT_AN_UPLOAD = (
    "This is the upload endpoint: POST files here with twine, uv publish or another "
    "publishing tool. Browse and install packages from /simple/ instead."
)
UNEXPECTED_FAILURE = (
    "The upload failed because of an error on the server; nothing was stored. "
    "The administrator can find the details in the server log."
)


# Token-authenticated API without cookies: there is no session for a forged request to ride.
@csrf_exempt
def upload(request):
    if request.method != "POST":
        response = error_response(request, 405, NOT_AN_UPLOAD)
        response["Allow"] = "POST"
        return response
    try:
        accepted = handle_upload(request)
    except ValidationError as exc:
        metrics.count_upload_refusal(exc.status)
        return error_response(request, exc.status, exc.message)
    except TokenError as exc:
        metrics.count_upload_refusal(403, token=True)
        return error_response(request, 403, exc.message)
    except Exception as exc:
        outage = outages.classify(exc, storing=True)
        if outage is None:
            logger.exception("upload failed with an unexpected error")
            metrics.count_upload_refusal(500)
            return error_response(request, 500, UNEXPECTED_FAILURE)
        # The pipeline stored nothing (its transaction and staging undo themselves); the
        # operator needs the cause, not a traceback per refused upload.
        logger.warning("upload refused: %s unavailable: %s", outage.what, outages.describe(exc))
        metrics.count_upload_refusal(outage.status)
        response = error_response(request, outage.status, outage.message)
        response["Retry-After"] = str(outages.RETRY_AFTER_SECONDS)
        return response
    metrics.count_upload(created=accepted.created)
    if not accepted.created:
        return success_response(f"{accepted.filename} was already uploaded with identical content.")
    # 200 whatever the malware scan said: the file is stored, only kept from clients while
    # held (twine and uv accept nothing but 200; the body says why it is not listed yet).
    hold = File.objects.filter(filename=accepted.filename).values_list("hold", flat=True).first()
    if hold:
        return success_response(f"{accepted.filename} uploaded; it is held from clients "
                                f"({HELD[hold]}).")
    return success_response(f"{accepted.filename} uploaded.")


HELD = {
    "scanning": "its malware scan has not ended yet; it is served once it is clean",
    "review": "its malware scan needs an administrator's review",
    "quarantined": "its release is quarantined; an administrator decides",
}
