"""Reading an upload body: fields in memory, files streamed to disk and hashed on the way.

The body is parsed here rather than through ``request.POST`` so that the file part's name
reaches the validators exactly as sent (Django would quietly strip path parts and control
characters, turning ``../x.whl`` into an acceptable ``x.whl``), and so that the digests and
the size are known without reading the file a second time.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.datastructures import MultiValueDict

from bastion.core.errors import ValidationError
from bastion.packaging.services import human_size

# Multipart boundaries and part headers around the fields; generous on purpose.
_ENVELOPE_SLACK = 1024 * 1024


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


class HashingUploadHandler(FileUploadHandler):
    """Writes each file part to a temporary file, hashing and counting as it goes."""

    chunk_size = 256 * 1024

    def __init__(self, request, max_file_size: int):
        super().__init__(request)
        self.max_file_size = max_file_size
        self.too_large = False
        self.file = None

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        # Our own name for the temporary file: the client's name never touches the filesystem.
        self.file = tempfile.NamedTemporaryFile(prefix="bastion-upload-", suffix=".part",
                                                dir=settings.FILE_UPLOAD_TEMP_DIR)
        self._size = 0
        self._sha256 = hashlib.sha256()
        self._blake2 = hashlib.blake2b(digest_size=32)
        self._md5 = hashlib.md5(usedforsecurity=False)

    def receive_data_chunk(self, raw_data, start):
        self._size += len(raw_data)
        if self._size > self.max_file_size:
            self.too_large = True
            # Drain the rest (bounded by the Content-Length checked beforehand) so the client
            # reads our answer instead of a reset connection.
            raise StopUpload(connection_reset=False)
        self._sha256.update(raw_data)
        self._blake2.update(raw_data)
        self._md5.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size):
        self.file.flush()
        received = ReceivedFile(
            field_name=self.field_name, filename=self.file_name, path=self.file.name,
            size=self._size, sha256=self._sha256.hexdigest(),
            blake2_256=self._blake2.hexdigest(), md5=self._md5.digest(), _handle=self.file,
        )
        self.file = None
        return received


class _VerbatimNameParser(MultiPartParser):
    def sanitize_file_name(self, file_name):
        # Kept as sent; the filename validator refuses what is unsafe, with a reason.
        return file_name or None


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
    fields_allowance = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
    if length > max_file_size + fields_allowance + _ENVELOPE_SLACK:
        raise ValidationError(
            f"File too large. The limit is {human_size(max_file_size)} per file."
        )


def receive(request, max_file_size: int) -> ReceivedBody:
    """Parse the multipart body, or raise ValidationError saying why it cannot be read."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ValidationError("Uploads must be sent as multipart/form-data.")
    handler = HashingUploadHandler(request, max_file_size)
    try:
        parser = _VerbatimNameParser(request.META, request, [handler], request.encoding)
        fields, files = parser.parse()
    except RequestDataTooBig:
        limit = human_size(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        raise ValidationError(
            f"The form fields of this upload are larger than {limit} in total.", status=413,
        ) from None
    except TooManyFieldsSent:
        raise ValidationError("The upload has too many form fields.") from None
    except TooManyFilesSent:
        raise ValidationError("The upload has too many file parts.") from None
    except (MultiPartParserError, SuspiciousOperation, UnicodeError):
        raise ValidationError("The upload is not a readable multipart/form-data body.") from None
    finally:
        if handler.file is not None:  # a part cut short: its temporary file is not kept
            handler.file.close()
    body = ReceivedBody(fields, files)
    if handler.too_large:
        body.close()
        raise ValidationError(
            f"File too large. The limit is {human_size(max_file_size)} per file."
        )
    return body
