"""The OpenAPI description (src/bastion/ops/data/openapi.json) and the URL routes, in step.

Every operation it describes is a route of the index, answered by the view its operationId
(the route's name) says; every route of the JSON endpoints is described, or listed below as
the same operation under another spelling, with the reason it is not described on its own.
"""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from bastion.ops.views import OPENAPI_PATH

# Touches no database: the SQLite pass only (tests/conftest.py).
pytestmark = pytest.mark.pure

DESCRIPTION = json.loads(OPENAPI_PATH.read_text())
# The modules whose routes are the JSON endpoints (and the upload endpoint).
JSON_VIEWS = ("bastion.simple.json_views", "bastion.simple.osv_views", "bastion.ops.views",
              "bastion.upload.views", "bastion.simple.views", "bastion.inventory.views")
# Routes of those modules the description does not list on their own, and why.
NOT_DESCRIBED = {
    "simple/{}": "the slash-less spelling: a 301 to the described URL",
    "pypi/{}/json/": "a trailing-slash spelling of the described URL, the same answer",
    "pypi/{}/{}/json/": "a trailing-slash spelling of the described URL, the same answer",
    "legacy": "the slash-less upload URL twine users type: the same view, answered directly",
    "legacy/+simple/{}/": "hatch's HTML-only simple page: not JSON",
    "legacy/+simple/{}": "hatch's HTML-only simple page: not JSON",
    "views/{}/simple/": "the described operation under a named view's prefix",
    "views/{}/simple/{}/": "the described operation under a named view's prefix",
    "views/{}/simple/{}": "the described operation under a named view's prefix",
    "views/{}/pypi/{}/json": "the described operation under a named view's prefix",
    "views/{}/pypi/{}/json/": "the described operation under a named view's prefix",
    "views/{}/pypi/{}/{}/json": "the described operation under a named view's prefix",
    "views/{}/pypi/{}/{}/json/": "the described operation under a named view's prefix",
    "_/metrics": "Prometheus text for a scraper, not JSON",
    "openapi.json": "the description itself",
}
PARAMETER = re.compile(r"<(?:\w+:)?\w+>|\{\w+\}")


def shape(route: str) -> str:
    """A route or a described path with its parameters' names left out."""
    return PARAMETER.sub("{}", route).lstrip("/")


def routes(patterns=None, prefix: str = ""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def operations():
    for path, item in DESCRIPTION["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def test_the_description_is_valid_openapi_3_1():
    assert DESCRIPTION["openapi"].startswith("3.1.")
    schemathesis.openapi.from_path(OPENAPI_PATH).validate()


@pytest.mark.parametrize("path, method, operation",
                         list(operations()), ids=[f"{m} {p}" for p, m, _ in operations()])
def test_every_described_operation_is_the_route_its_id_names(path, method, operation):
    concrete = PARAMETER.sub("demo", path)
    match = resolve(concrete)
    assert match.url_name == operation["operationId"]
    assert match.func.__module__ in JSON_VIEWS


def test_every_json_route_is_described_or_named_as_another_spelling():
    described = {shape(path) for path in DESCRIPTION["paths"]}
    found = {shape(route) for route, view in routes()
             if getattr(view, "__module__", "") in JSON_VIEWS}
    assert found - described - set(NOT_DESCRIBED) == set()
    # And nothing listed here is stale.
    assert set(NOT_DESCRIBED) <= found
    assert described <= found
