import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
django_application = get_wsgi_application()

from bastion.simple.fastpath import SimpleDetailFastPath  # noqa: E402  (needs the apps loaded)


class HeadWithoutBody:
    """Answers to HEAD carry the headers of the GET answer and no body.

    Django leaves the body in (its development server strips it); gunicorn drops it but logs
    a warning for every such request, which would bury real warnings.
    """

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        result = self.application(environ, start_response)
        if environ.get("REQUEST_METHOD") != "HEAD":
            return result
        close = getattr(result, "close", None)
        if close is not None:
            close()  # what the server would do after sending it (Django's request_finished)
        return []


# Cached /simple/<project>/ pages are answered before Django; everything else goes through it.
fast_path = SimpleDetailFastPath(django_application)
application = HeadWithoutBody(fast_path)
