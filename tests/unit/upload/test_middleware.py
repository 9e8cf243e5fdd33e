"""POST /legacy/ goes straight to the upload view; everything else takes the usual way."""

from django.test import RequestFactory

from bastion.upload.middleware import UploadShortWayMiddleware


def the_long_way(request):
    raise AssertionError(f"{request.method} {request.path} went through the middleware stack")


def test_an_upload_goes_straight_to_the_view_and_keeps_the_headers():
    response = UploadShortWayMiddleware(the_long_way)(RequestFactory().post("/legacy/"))
    assert response.status_code == 403  # no credentials: the view itself answered
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert int(response["Content-Length"]) == len(response.content)


def test_other_requests_take_the_usual_way():
    seen = []
    middleware = UploadShortWayMiddleware(lambda request: seen.append(request.path) or "usual")
    factory = RequestFactory()
    for request in (factory.get("/legacy/"), factory.post("/legacy"), factory.post("/simple/")):
        assert middleware(request) == "usual"
    assert seen == ["/legacy/", "/legacy", "/simple/"]
