"""``{% pager page_obj %}``: Newer/Older links for a paginated list, keeping the filters.

The rest of the query string (a security log's filters, another list's page on the same
screen) is kept, so paging one list neither drops the filter nor resets the other list.
"""

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()


@register.simple_tag(takes_context=True)
def page_url(context, number: int, param: str = "page") -> str:
    query = context["request"].GET.copy()
    query[param] = str(number)
    return "?" + query.urlencode()


@register.inclusion_tag("web/_pager.html", takes_context=True)
def pager(context, page, param: str = "page", label: str = _("Pages"), anchor: str = ""):
    return {"request": context["request"], "page": page, "param": param, "label": label,
            "anchor": f"#{anchor}" if anchor else ""}
