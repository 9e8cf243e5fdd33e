import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
django_application = get_wsgi_application()

from bastion.simple.fastpath import SimpleDetailFastPath  # noqa: E402  (needs the apps loaded)

# Cached /simple/<project>/ pages are answered before Django; everything else goes through it.
application = SimpleDetailFastPath(django_application)
