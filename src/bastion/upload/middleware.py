"""A short way through the middleware stack for uploads.

Every file a publishing tool sends is one ``POST /legacy/``, and on the 2-core machines
Bastion is measured on, the session, CSRF, authentication, messages, gzip and static-file
layers cost about half a millisecond per upload to pass through with nothing to do: the
view reads no session or cookie (it is CSRF-exempt because it authenticates from the
Authorization header itself, ``tokens.http``), and its answers are a line of text. This
middleware, placed after SimpleFastPathMiddleware, hands such requests straight to the
view; the headers every response carries are still added, by the same code.
"""

from __future__ import annotations

from bastion.web.middleware import set_content_length, with_header_layers

from . import views

UPLOAD_PATH = "/legacy/"


class UploadShortWayMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._upload = with_header_layers(lambda request: set_content_length(views.upload(request)))

    def __call__(self, request):
        if request.method == "POST" and request.path_info == UPLOAD_PATH:
            return self._upload(request)
        return self.get_response(request)
