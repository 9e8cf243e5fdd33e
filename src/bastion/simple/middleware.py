"""A short way through the middleware stack for the index's hottest URL.

``GET /simple/<project>/`` is what every installer asks first, for every dependency, and a
cached page costs less to send than the session, CSRF, authentication, messages and gzip
layers cost to pass through. Those layers have nothing to do here: the view reads no
session or cookie, changes nothing, authenticates from the Authorization header itself
(``tokens.http.authorize_read``) and sends its pages already compressed. So this middleware,
placed right after Django's SecurityMiddleware, hands such requests straight to the view.

The headers the skipped layers would have added are still added, by the same code: the
view's response passes through SecurityHeadersMiddleware and XFrameOptionsMiddleware here.
"""

from __future__ import annotations

import re

from bastion.web.middleware import set_content_length, with_header_layers

from . import views

_DETAIL = re.compile(r"/simple/([^/]+)/\Z")


class SimpleFastPathMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._serve_detail = self.around_view(self._detail)

    @staticmethod
    def around_view(view):
        """``view`` wrapped in the layers this short way keeps (the WSGI fast path reuses them)."""
        return with_header_layers(view)

    def __call__(self, request):
        if request.method in ("GET", "HEAD"):
            match = _DETAIL.match(request.path_info)
            if match is not None:
                request.simple_project_name = match[1]
                return self._serve_detail(request)
        return self.get_response(request)

    @staticmethod
    def _detail(request):
        return set_content_length(views.detail_response(request, request.simple_project_name))
