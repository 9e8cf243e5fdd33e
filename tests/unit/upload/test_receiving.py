import hashlib

import pytest
from django.test import RequestFactory, override_settings

from bastion.core.errors import ValidationError
from bastion.upload import receiving
from bastion.upload.receiving import check_declared_length, receive

CONTENT = b"PK\x03\x04" + bytes(range(256)) * 40


def multipart(filename: str, content: bytes = CONTENT, fields=(("name", "demo"),)) -> tuple[bytes, str]:
    boundary = "testboundary1234"
    body = b""
    for key, value in fields:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                 f"{value}\r\n").encode()
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
             f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(body: bytes, content_type: str, **meta):
    return RequestFactory().generic("POST", "/legacy/", body, content_type=content_type, **meta)


def test_file_is_streamed_to_disk_with_its_digests_and_size():
    body = receive(post(*multipart("demo-1.0.tar.gz")), max_file_size=10 ** 6)
    try:
        assert body.fields["name"] == "demo"
        received = body.files["content"]
        assert received.size == len(CONTENT)
        assert received.sha256 == hashlib.sha256(CONTENT).hexdigest()
        assert received.blake2_256 == hashlib.blake2b(CONTENT, digest_size=32).hexdigest()
        assert received.md5 == hashlib.md5(CONTENT).digest()
        with open(received.path, "rb") as fh:
            assert fh.read() == CONTENT
    finally:
        body.close()


@pytest.mark.parametrize("filename", ["../../etc/demo-1.0.tar.gz", "x&amp;y.whl",
                                      "demo\x01-1.0.tar.gz"])
def test_filename_reaches_the_validators_exactly_as_sent(filename):
    # Django would strip the path, unescape entities and drop control characters silently.
    body = receive(post(*multipart(filename)), max_file_size=10 ** 6)
    try:
        assert body.files["content"].filename == filename
    finally:
        body.close()


@pytest.mark.parametrize("filename", ["a\\b.whl", "C:\\dist\\demo-1.0.tar.gz"])
def test_a_backslash_in_the_filename_is_refused_rather_than_cut(filename):
    # A multipart parser drops a Windows path in front of the name; none is valid anyway.
    with pytest.raises(ValidationError) as info:
        receive(post(*multipart(filename)), max_file_size=10 ** 6)
    assert info.value.message == "The name of the uploaded file may not contain a backslash."


def test_several_values_of_a_field_and_utf8_text_are_kept():
    body = receive(post(*multipart("a.whl", fields=[("classifiers", "A :: B"),
                                                     ("classifiers", "C :: D"),
                                                     ("author", "Zoë Ünicode")])), 10 ** 6)
    try:
        assert body.fields.getlist("classifiers") == ["A :: B", "C :: D"]
        assert body.fields["author"] == "Zoë Ünicode"
    finally:
        body.close()


def test_a_field_that_is_not_utf8_is_refused():
    raw, content_type = multipart("a.whl", fields=[("author", "PLACEHOLDER")])
    with pytest.raises(ValidationError) as info:
        receive(post(raw.replace(b"PLACEHOLDER", b"\xff\xfe"), content_type), 10 ** 6)
    assert info.value.message == "The form field 'author' is not valid UTF-8."


@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=2)
def test_too_many_file_parts_are_refused_and_nothing_is_left_behind(tmp_path):
    raw, content_type = multipart("a.whl")
    part = raw[raw.index(b"--testboundary1234\r\nContent-Disposition: form-data; name=\"content\""):
               raw.rindex(b"--testboundary1234--")]
    body = raw.replace(part, part * 3)
    with override_settings(FILE_UPLOAD_TEMP_DIR=str(tmp_path)), \
            pytest.raises(ValidationError) as info:
        receive(post(body, content_type), 10 ** 6)
    assert info.value.message == "The upload has too many file parts."
    assert list(tmp_path.iterdir()) == []


def test_a_body_cut_short_leaves_no_temporary_file(tmp_path):
    raw, content_type = multipart("a.whl")
    with override_settings(FILE_UPLOAD_TEMP_DIR=str(tmp_path)), \
            pytest.raises(ValidationError) as info:
        receive(post(raw[: len(raw) // 2], content_type), 10 ** 6)
    assert "not a readable multipart/form-data body" in info.value.message
    assert list(tmp_path.iterdir()) == []


def test_temporary_file_is_removed_when_closed():
    body = receive(post(*multipart("demo-1.0.tar.gz")), max_file_size=10 ** 6)
    path = body.files["content"].path
    body.close()
    with pytest.raises(FileNotFoundError):
        open(path, "rb")


def test_a_file_over_the_limit_is_cut_off_while_streaming():
    with pytest.raises(ValidationError) as info:
        receive(post(*multipart("demo-1.0.tar.gz")), max_file_size=1000)
    assert info.value.message == "File too large. The limit is 1000 bytes per file."


def test_oversized_form_fields_are_refused_not_a_server_error(monkeypatch):
    monkeypatch.setattr(receiving, "MAX_FIELDS_BYTES", 1000)
    with pytest.raises(ValidationError) as info:
        receive(post(*multipart("a.whl", fields=[("description", "x" * 5000)])), 10 ** 6)
    assert info.value.status == 413
    assert "form fields of this upload are larger than" in info.value.message


def test_a_field_too_long_for_any_reading_is_refused_while_it_streams_and_not_held(monkeypatch):
    held = []
    original = receiving._FormReader._on

    def watching(reader, event):
        original(reader, event)
        held.append(sum(map(len, reader._field_value)))

    monkeypatch.setattr(receiving._FormReader, "_on", watching)
    comment = "x" * (4 * 1000 + 1)  # more bytes than 1000 characters can take in UTF-8
    with pytest.raises(ValidationError) as info:
        receive(post(*multipart("a.whl", fields=[("name", "demo"), ("comment", comment)])),
                10 ** 6)
    assert info.value.message == "The field 'comment' is too long: at most 1000 characters."
    assert info.value.status == 400
    assert max(held) <= 4 * 1000


def test_a_field_within_its_byte_cap_reaches_the_form_whole():
    comment = "\U0001F40D" * 1000  # 1000 characters, 4000 bytes
    body = receive(post(*multipart("a.whl", fields=[("comment", comment)])), 10 ** 6)
    try:
        assert body.fields["comment"] == comment
    finally:
        body.close()


def test_the_body_is_read_to_its_end_after_a_field_is_refused():
    raw, content_type = multipart("a.whl", fields=[("comment", "x" * 100_000)])
    request = post(raw, content_type)
    with pytest.raises(ValidationError):
        receive(request, 10 ** 6)
    assert request.read() == b""  # the client gets our answer, not a reset connection


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=5)
def test_too_many_fields_are_refused():
    fields = [(f"f{i}", "x") for i in range(20)]
    with pytest.raises(ValidationError) as info:
        receive(post(*multipart("a.whl", fields=fields)), 10 ** 6)
    assert info.value.message == "The upload has too many form fields."


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=\x7f"])
def test_unreadable_multipart_is_refused(content_type):
    with pytest.raises(ValidationError) as info:
        receive(post(b"--x\r\ngarbage", content_type), 10 ** 6)
    assert "not a readable multipart/form-data body" in info.value.message


def test_other_content_types_are_refused():
    with pytest.raises(ValidationError) as info:
        receive(post(b"a=b", "application/x-www-form-urlencoded"), 10 ** 6)
    assert info.value.message == "Uploads must be sent as multipart/form-data."


def test_declared_length_far_over_the_limit_is_refused_before_reading():
    request = post(b"", "multipart/form-data; boundary=x", CONTENT_LENGTH=str(10 ** 12))
    with pytest.raises(ValidationError) as info:
        check_declared_length(request, 100 * 1024 * 1024)
    assert info.value.message == "File too large. The limit is 100 MiB per file."


def test_chunked_uploads_are_refused_with_411():
    request = post(b"", "multipart/form-data; boundary=x", HTTP_TRANSFER_ENCODING="chunked")
    request.META.pop("CONTENT_LENGTH", None)
    with pytest.raises(ValidationError) as info:
        check_declared_length(request, 100)
    assert info.value.status == 411
