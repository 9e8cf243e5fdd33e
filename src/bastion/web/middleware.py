"""Request hygiene and security headers on every response.

Django's SecurityMiddleware covers the rest of the headers.
"""

from django.http import HttpResponseBadRequest
from django.middleware.clickjacking import XFrameOptionsMiddleware

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy",
                                    "camera=(), microphone=(), geolocation=(), payment=()")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class RejectNulBytesMiddleware:
    """Refuse a NUL anywhere in the path or query before any view sees it.

    PostgreSQL cannot store or compare strings holding NUL, so one reaching a query would be
    a 500; no legitimate client sends one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path_info or "%00" in request.META.get("QUERY_STRING", ""):
            return HttpResponseBadRequest("The request contains a NUL character.\n",
                                          content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def with_header_layers(view):
    """``view`` wrapped in the layers that add headers to every response.

    For the short ways past the middleware stack (``simple.middleware``,
    ``upload.middleware``): what they skip adds nothing to their answers, but these do.
    """
    return SecurityHeadersMiddleware(XFrameOptionsMiddleware(view))


def set_content_length(response):
    """CommonMiddleware's job on the long way round; without it gunicorn would chunk."""
    if (response.status_code != 304 and not response.streaming
            and not response.has_header("Content-Length")):
        response["Content-Length"] = str(len(response.content))
    return response
