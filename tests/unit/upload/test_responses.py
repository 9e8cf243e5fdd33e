import json

import pytest
from django.test import RequestFactory

from bastion.upload.responses import MAX_REASON_LENGTH, error_response, reason_phrase

UV_ACCEPT = "application/json;q=0.9, text/plain;q=0.8, text/html;q=0.7"


def request(accept: str | None = None):
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    return RequestFactory().post("/legacy/", **headers)


def test_reason_phrase_keeps_an_ordinary_message():
    assert reason_phrase("File already exists ('a-1.0.tar.gz').") == (
        "File already exists ('a-1.0.tar.gz').")


def test_reason_phrase_is_one_latin1_line_without_controls():
    phrase = reason_phrase("bad\r\nHeader: injected\x00\x7f caf\u00e9 \u2603 \x85end")
    assert "\r" not in phrase and "\n" not in phrase and "\x00" not in phrase
    assert "\x7f" not in phrase and "\x85" not in phrase
    assert "caf\u00e9" in phrase and "?" in phrase
    phrase.encode("latin-1")


def test_reason_phrase_is_capped():
    phrase = reason_phrase("x" * 5000)
    assert len(phrase) == MAX_REASON_LENGTH and phrase.endswith("...")


def test_error_carries_the_message_in_the_reason_phrase_and_a_text_body():
    response = error_response(request("*/*"), 400, "Unknown protocol version.")
    assert response.status_code == 400
    assert response.reason_phrase == "Unknown protocol version."
    assert response["Content-Type"].startswith("text/plain")
    assert "Unknown protocol version." in response.content.decode()


@pytest.mark.parametrize("accept", ["application/json", UV_ACCEPT])
def test_clients_asking_for_json_get_message_code_and_title(accept):
    response = error_response(request(accept), 403, "Invalid or non-existent authentication information.")
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {
        "message": "Invalid or non-existent authentication information.",
        "code": "403 Invalid or non-existent authentication information.",
        "title": "Forbidden",
    }


@pytest.mark.parametrize("accept", [None, "*/*", "text/html", "text/plain, application/json;q=0.5"])
def test_clients_not_preferring_json_get_text(accept):
    assert error_response(request(accept), 400, "x")["Content-Type"].startswith("text/plain")


def test_json_body_keeps_characters_the_reason_phrase_cannot():
    response = error_response(request("application/json"), 400, "Name \u2603 is invalid.")
    assert json.loads(response.content)["message"] == "Name \u2603 is invalid."
    assert response.reason_phrase == "Name ? is invalid."
