"""Pages in the reader's language; the package-index APIs untouched.

Django's LocaleMiddleware is not used: it adds ``Vary: Accept-Language`` and
``Content-Language`` to every response, the APIs' included, whose headers caches and
mirrors key on. Here the APIs' paths skip the middleware entirely (they stay English, see
bastion.accounts.languages) and only HTML pages say that they vary by language.
"""

from django.utils import translation
from django.utils.cache import patch_vary_headers

from bastion.accounts import languages

from . import errors



class PageLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if errors.is_api(request):
            return self.get_response(request)
        language = languages.for_request(request)
        request.LANGUAGE_CODE = language
        with translation.override(language):
            response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            patch_vary_headers(response, ("Accept-Language",))
            response.headers.setdefault("Content-Language", language)
        return response
