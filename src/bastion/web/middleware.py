"""Request hygiene and security headers on every response.

Django's SecurityMiddleware covers the rest of the headers.
"""

from functools import partial

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpResponseBadRequest
from django.utils.functional import SimpleLazyObject, empty

from . import errors

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


class HeadWithoutBodyMiddleware:
    """Answers to HEAD carry the headers of the GET answer and no body.

    Django leaves the body in (its development server strips it); gunicorn drops it but logs
    a warning for every such request, which would bury real warnings. First in the stack, so
    that the headers it keeps (Content-Length above all) are those the other layers gave the
    GET answer.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "HEAD":
            if response.streaming:
                # What it was streaming is still closed with the response.
                response.streaming_content = ()
            else:
                response.content = b""
        return response


class LazyMessageMiddleware(MessageMiddleware):
    """Django's message middleware, building the message store only when a view uses it.

    Building it reads the session and sets up the cookie signer on every request, and most
    requests (index pages, files, the APIs) never show or add a message. A store that was
    never built has nothing to save, so the response is left alone, as Django's own
    middleware leaves it when the store is unused.
    """

    def process_request(self, request):
        request._messages = SimpleLazyObject(partial(default_storage, request))

    def process_response(self, request, response):
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)


class MethodNotAllowedPageMiddleware:
    """Give the empty 405 of Django's method decorators the site's error page.

    Django has no handler405: ``require_POST`` and friends answer with no body at all. Only
    pages change; the API routes keep their own answers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code == 405 and not response.streaming and not response.content
                and not errors.is_api(request)):
            return errors.method_not_allowed(request, response.get("Allow", ""))
        return response
