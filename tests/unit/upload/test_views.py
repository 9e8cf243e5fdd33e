import logging

from django.test import RequestFactory

from bastion.upload import views


def test_an_unexpected_error_is_logged_and_answered_with_a_generic_500(monkeypatch, caplog):
    def broken(request):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(views, "handle_upload", broken)
    with caplog.at_level(logging.ERROR, logger="bastion.upload.views"):
        response = views.upload(RequestFactory().post("/legacy/"))
    assert response.status_code == 500
    assert "secret internal detail" not in response.content.decode()
    assert "nothing was stored" in response.reason_phrase
    assert "secret internal detail" in caplog.text


def test_get_is_not_allowed():
    response = views.upload(RequestFactory().get("/legacy/"))
    assert response.status_code == 405 and response["Allow"] == "POST"
