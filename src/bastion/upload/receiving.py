"""Reading an upload body: fields in memory, files streamed to disk and hashed on the way.

The body is parsed here, with the ``multipart`` library's push parser, rather than through
``request.POST``: the file part's name reaches the validators exactly as sent (Django would
quietly strip path parts and control characters, turning ``../x.whl`` into an acceptable
``x.whl``), the digests and the size are known without reading the file a second time, and
it costs a fifth of Django's parser for the two dozen small fields every upload carries.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field

import multipart
from django.conf import settings
from django.utils.datastructures import MultiValueDict

from bastion.core.errors import ValidationError
from bastion.core.sizes import format_size
from bastion.storage.leftovers import UPLOAD_PREFIX, UPLOAD_SUFFIX, process_tag

from .form import MAX_FIELDS_BYTES, MAX_UTF8_BYTES_PER_CHARACTER, max_characters, too_long

# Multipart boundaries and part headers around the fields; generous on purpose.
_ENVELOPE_SLACK = 1024 * 1024
_READ_SIZE = 256 * 1024
# RFC 2046 section 5.1.1: 1 to 70 characters of this set, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
UNREADABLE = "The upload is not a readable multipart/form-data body."


@dataclass
class ReceivedFile:
    """One file part, on disk, with what was computed while it streamed in."""

    field_name: str
    filename: str  # exactly as the client sent it
    path: str
    size: int
    sha256: str
    blake2_256: str
    md5: bytes
    _handle: object = field(repr=False, default=None)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()  # the temporary file deletes itself
            self._handle = None


def _temporary_file():
    # In a directory of Bastion's own, where leftovers are known to be ours (storage.leftovers).
    directory = settings.FILE_UPLOAD_TEMP_DIR
    try:
        return tempfile.NamedTemporaryFile(prefix=UPLOAD_PREFIX + process_tag(), suffix=UPLOAD_SUFFIX,
                                           dir=directory)
    except FileNotFoundError:  # not made yet (the server starts without `bastion init`)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return tempfile.NamedTemporaryFile(prefix=UPLOAD_PREFIX + process_tag(), suffix=UPLOAD_SUFFIX,
                                           dir=directory)


class _IncomingFile:
    """A file part being written to a temporary file, hashed and counted as it arrives."""

    def __init__(self, field_name: str, filename: str):
        self.field_name = field_name
        self.filename = filename
        # Our own name for the temporary file: the client's name never touches the filesystem.
        self.handle = _temporary_file()
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.blake2 = hashlib.blake2b(digest_size=32)
        self.md5 = hashlib.md5(usedforsecurity=False)

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.sha256.update(chunk)
        self.blake2.update(chunk)
        self.md5.update(chunk)
        self.handle.write(chunk)

    def finish(self) -> ReceivedFile:
        self.handle.flush()
        return ReceivedFile(
            field_name=self.field_name, filename=self.filename, path=self.handle.name,
            size=self.size, sha256=self.sha256.hexdigest(), blake2_256=self.blake2.hexdigest(),
            md5=self.md5.digest(), _handle=self.handle,
        )


@dataclass
class ReceivedBody:
    fields: MultiValueDict
    files: MultiValueDict

    def close(self) -> None:
        for _key, received in self.files.lists():
            for item in received:
                item.close()


def check_declared_length(request, max_file_size: int) -> None:
    """Refuse a body that cannot fit before reading any of it."""
    transfer_encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    raw_length = request.META.get("CONTENT_LENGTH") or ""
    if not raw_length:
        if "chunked" in transfer_encoding:
            raise ValidationError(
                "Send the upload with a Content-Length header; chunked uploads are not accepted.",
                status=411,
            )
        return
    try:
        length = int(raw_length)
    except ValueError:
        raise ValidationError("The Content-Length header is not a number.") from None
    if length > max_file_size + MAX_FIELDS_BYTES + _ENVELOPE_SLACK:
        raise ValidationError(
            f"File too large. The limit is {format_size(max_file_size)} per file."
        )


def receive(request, max_file_size: int) -> ReceivedBody:
    """Parse the multipart body, or raise ValidationError saying why it cannot be read."""
    content_type = request.META.get("CONTENT_TYPE", "")
    kind, options = multipart.parse_options_header(content_type)
    if kind != "multipart/form-data":
        raise ValidationError("Uploads must be sent as multipart/form-data.")
    boundary = options.get("boundary", "")
    if not _BOUNDARY.fullmatch(boundary):
        raise ValidationError(UNREADABLE)
    reader = _FormReader(boundary, max_file_size)
    try:
        reader.read_all(request)
    except BaseException:
        reader.discard()
        raise
    return reader.body()


class _FormReader:
    """Feeds the request body to the push parser and sorts its events into fields and files."""

    def __init__(self, boundary: str, max_file_size: int):
        self.max_file_size = max_file_size
        self.max_fields_bytes = MAX_FIELDS_BYTES
        self.max_fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        self.max_files = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        self.parser = multipart.PushMultipartParser(boundary)
        self.fields = MultiValueDict()
        self.files = MultiValueDict()
        self.field_bytes = 0
        self.field_count = 0
        self.file_count = 0
        self.too_large = False
        self.field_refused: str | None = None  # why, once a field went over its limit
        self._field_name: str | None = None
        self._field_value: list[bytes] = []
        self._field_size = 0
        self._field_cap = 0
        self._field_over = False
        self._file: _IncomingFile | None = None

    def read_all(self, request) -> None:
        try:
            while True:
                # Django's request stream stops at the declared Content-Length.
                chunk = request.read(_READ_SIZE)
                for event in self.parser.parse(chunk):
                    self._on(event)
                if not chunk:
                    break
        except multipart.MultipartError:  # malformed input, or one of the parser's limits
            raise ValidationError(UNREADABLE) from None
        if self.field_refused:
            raise ValidationError(self.field_refused)
        if self.too_large:
            raise ValidationError(
                f"File too large. The limit is {format_size(self.max_file_size)} per file."
            )

    def _on(self, event) -> None:
        if isinstance(event, multipart.MultipartSegment):
            self._start(event)
        elif event is None:
            self._end()
        elif self._file is not None:
            if self._file.size + len(event) > self.max_file_size:
                # Keep reading (the length was bounded beforehand) so that the client reads
                # our answer rather than a reset connection, but store nothing more.
                self.too_large = True
            if not self.too_large:
                self._file.write(event)
        else:
            self._field_size += len(event)
            if self._field_size > self._field_cap:
                # Too long whatever its characters: keep reading, as for a file that is too
                # large, so the client reads our answer, but hold none of it.
                self._field_over = True
                self.field_refused = self.field_refused or too_long(self._field_name)
            if self._field_over:
                return
            self.field_bytes += len(event)
            if self.field_bytes > self.max_fields_bytes:
                raise ValidationError(
                    f"The form fields of this upload are larger than "
                    f"{format_size(self.max_fields_bytes)} in total.", status=413,
                )
            self._field_value.append(event)

    def _start(self, segment) -> None:
        if segment.filename is not None:
            self.file_count += 1
            if self.max_files is not None and self.file_count > self.max_files:
                raise ValidationError("The upload has too many file parts.")
            if "\\" in (segment.header("Content-Disposition") or ""):
                # The parser would cut a Windows path off the name; nothing valid has one.
                raise ValidationError("The name of the uploaded file may not contain a backslash.")
            self._file = _IncomingFile(segment.name, segment.filename)
        else:
            self.field_count += 1
            if self.max_fields is not None and self.field_count > self.max_fields:
                raise ValidationError("The upload has too many form fields.")
            self._field_name = segment.name
            self._field_value = []
            self._field_size = 0
            self._field_cap = max_characters(segment.name) * MAX_UTF8_BYTES_PER_CHARACTER
            self._field_over = False

    def _end(self) -> None:
        if self._file is not None:
            received = self._file.finish()
            self._file = None
            self.files.appendlist(received.field_name, received)
            return
        if self._field_over:
            self._field_value = []
            return
        try:
            value = b"".join(self._field_value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(
                f"The form field '{self._field_name}' is not valid UTF-8."
            ) from None
        self.fields.appendlist(self._field_name, value)
        self._field_value = []

    def body(self) -> ReceivedBody:
        return ReceivedBody(self.fields, self.files)

    def discard(self) -> None:
        if self._file is not None:  # a part cut short: its temporary file is not kept
            self._file.handle.close()
            self._file = None
        ReceivedBody(self.fields, self.files).close()
