"""Property tests: for any input, the validators either accept or raise ValidationError, and
what cannot be a distribution is refused.

The archive inspector turns any unexpected exception into a refusal ("could not be read"),
so that hostile input never ends in a server error; here that refusal counts as a crash: a
bug the inspector should have refused by name.

Bounded so the whole module runs in well under 30 seconds; ``HYPOTHESIS_PROFILE=thorough``
runs ten times the examples (the tests without a count of their own).
"""

import gzip
import io
import os
import tarfile
import tempfile
import warnings
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.core.archives import ArchiveLimits, inspect_sdist, inspect_wheel
from bastion.core.distributions import validate_distribution
from bastion.core.errors import ValidationError
from bastion.core.filenames import parse_filename
from bastion.core.metadata import check_form_agrees, parse_metadata
from tests.artifacts import Sdist, Wheel, metadata_text
from tests.e2e.hostile import record_line

# No count of its own: hypothesis's default (100), ten times that in the thorough profile.
FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMITS = ArchiveLimits(max_members=200, max_uncompressed=4 << 20)

_WHEEL = Wheel("demo", "1.0", entry_points="[console_scripts]\ndemo = demo:main\n",
               files={"demo/data.txt": b"some data\n" * 20})
WHEEL, WHEEL_METADATA = _WHEEL.build(), _WHEEL.metadata_bytes()
SDIST_TAR = gzip.decompress(Sdist("demo", "1.0", files={"demo-1.0/README": b"read me\n" * 20})
                            .build())
SDIST = Sdist("demo", "1.0").build()
SDIST_METADATA = metadata_text("demo", "1.0").encode()
WHEEL_DIST = parse_filename("demo-1.0-py3-none-any.whl")
SDIST_DIST = parse_filename("demo-1.0.tar.gz")
METADATA_FIELDS = ["Metadata-Version", "Name", "Version", "Summary", "Description",
                   "Description-Content-Type", "Keywords", "Home-page", "Download-URL",
                   "Author-email", "Maintainer-email", "License", "License-Expression",
                   "License-File", "Classifier", "Requires-Dist", "Requires-Python",
                   "Project-URL", "Provides-Extra", "Provides-Dist", "Obsoletes-Dist",
                   "Dynamic", "Platform", "Import-Name", "X-Unknown"]


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="bastion-fuzz-") as directory:
        yield directory


def write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# What archives.common.guarded says when an inspection raised something it did not expect.
CRASH = "Invalid distribution file. The archive could not be read."


def accepted_or_refused(call):
    """What ``call`` returns, or None when it refuses with one readable sentence."""
    try:
        return call()
    except ValidationError as exc:
        assert exc.message and "\n" not in exc.message and exc.status == 400
        assert exc.message != CRASH, f"the inspector crashed: {exc.__context__!r}"
        return None


def refused(call) -> None:
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.message and "\n" not in caught.value.message
    assert caught.value.status == 400
    assert caught.value.message != CRASH, f"the inspector crashed: {caught.value.__context__!r}"


def mutated(base: bytes, edits: list[tuple[int, int]], cut: int | None,
            insert: tuple[int, bytes] | None) -> bytes:
    data = bytearray(base)
    for position, value in edits:
        data[position % len(data)] = value
    if insert is not None:
        at, chunk = insert
        data[at % len(data): at % len(data)] = chunk
    if cut is not None:
        del data[cut % len(data):]
    return bytes(data)


edits = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6)
cuts = st.none() | st.integers(min_value=0)
inserts = st.none() | st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=64))


@FUZZ
@given(st.text(max_size=300), st.booleans())
def test_any_filename_is_parsed_or_refused(filename, allow_zip):
    accepted_or_refused(lambda: parse_filename(filename, allow_zip_sdist=allow_zip))


@settings(FUZZ, max_examples=40)
@given(st.from_regex(r"[A-Za-z0-9._+!-]{1,20}-[0-9a-z.+!_-]{1,12}(-[0-9a-zA-Z_.]{1,10}){2,4}"
                     r"\.(whl|tar\.gz|zip)", fullmatch=True))
def test_filename_shaped_strings_are_parsed_or_refused(filename):
    accepted_or_refused(lambda: parse_filename(filename))


@FUZZ
@given(st.binary(max_size=2000))
def test_any_metadata_bytes_are_parsed_or_refused(raw):
    accepted_or_refused(lambda: parse_metadata(raw))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(METADATA_FIELDS), st.text(max_size=60)), max_size=12),
       st.text(max_size=200), st.dictionaries(st.sampled_from(["name", "version",
                                                               "metadata_version"]),
                                              st.text(max_size=20)))
def test_structured_metadata_is_parsed_or_refused(headers, body, form):
    lines = [f"{key}: {value}" for key, value in headers]
    raw = ("\n".join(lines) + "\n\n" + body).encode("utf-8", "surrogatepass")

    def check():
        meta = parse_metadata(raw)
        check_form_agrees(form, meta)
    accepted_or_refused(check)


@FUZZ
@given(st.sampled_from(["1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5"]),
       st.text(max_size=400), st.sampled_from(["", "text/x-rst", "text/markdown",
                                               "text/plain", "text/markdown; variant=CommonMark"]))
def test_any_description_renders_or_is_refused(metadata_version, description, content_type):
    if metadata_version < "2.1":
        content_type = ""
    raw = metadata_text("demo", "1.0", metadata_version=metadata_version, description=description,
                        description_content_type=content_type).encode("utf-8", "surrogatepass")
    accepted_or_refused(lambda: parse_metadata(raw))


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes_as_a_wheel_are_refused(scratch, data):
    path = write(scratch, "random.whl", data)
    refused(lambda: inspect_wheel(path, WHEEL_DIST, LIMITS))


@FUZZ
@given(edits, cuts, inserts)
def test_mutated_wheels_are_accepted_or_refused(scratch, changes, cut, insert):
    path = write(scratch, "mutated.whl", mutated(WHEEL, changes, cut, insert))
    contents = accepted_or_refused(lambda: inspect_wheel(path, WHEEL_DIST, LIMITS))
    # The CRCs and RECORD's hashes guard METADATA: a wheel still accepted still says the same.
    assert contents is None or contents.metadata_bytes == WHEEL_METADATA


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes_as_an_sdist_are_refused(scratch, data):
    path = write(scratch, "random.tar.gz", data)
    refused(lambda: inspect_sdist(path, SDIST_DIST, LIMITS))


@FUZZ
@given(st.binary(max_size=4000))
def test_random_gzipped_bytes_as_an_sdist_are_refused(scratch, data):
    path = write(scratch, "gzipped.tar.gz", gzip.compress(data, mtime=0))
    refused(lambda: inspect_sdist(path, SDIST_DIST, LIMITS))


@FUZZ
@given(edits, cuts, inserts)
def test_mutated_sdists_are_accepted_or_refused(scratch, changes, cut, insert):
    data = gzip.compress(mutated(SDIST_TAR, changes, cut, insert), mtime=0)
    path = write(scratch, "mutated.tar.gz", data)
    accepted_or_refused(lambda: inspect_sdist(path, SDIST_DIST, LIMITS))


def still_unpacks_to(data: bytes, original: bytes) -> bool:
    try:
        return gzip.decompress(data) == gzip.decompress(original)
    except (OSError, EOFError, zlib.error):
        return False


@FUZZ
@given(edits, cuts)
def test_corrupted_compressed_sdists_are_refused(scratch, changes, cut):
    data = mutated(SDIST, changes, cut, None)
    path = write(scratch, "compressed.tar.gz", data)
    if still_unpacks_to(data, SDIST):
        # Only a byte gzip does not check changed (the header's time, flags, OS): the same sdist.
        assert inspect_sdist(path, SDIST_DIST, LIMITS).metadata_bytes == SDIST_METADATA
    else:
        refused(lambda: inspect_sdist(path, SDIST_DIST, LIMITS))


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([tarfile.XHDTYPE, tarfile.XGLTYPE,
                                                 tarfile.GNUTYPE_LONGNAME]))
def test_any_extended_header_is_accepted_or_refused(scratch, payload, kind):
    header = tarfile.TarInfo("pax")
    header.type = kind
    header.size = len(payload)
    raw = io.BytesIO()
    raw.write(header.tobuf(tarfile.USTAR_FORMAT) + payload + b"\0" * (-len(payload) % 512))
    raw.write(SDIST_TAR)
    path = write(scratch, "pax.tar.gz", gzip.compress(raw.getvalue(), mtime=0))
    accepted_or_refused(lambda: inspect_sdist(path, SDIST_DIST, LIMITS))


@FUZZ
@given(edits, cuts, st.sampled_from(["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz",
                                     "demo-1.0.zip", "Demo-1.0-cp311-cp311-linux_x86_64.whl",
                                     "other-2.0.tar.gz"]),
       st.sampled_from([None, "demo", "other"]), st.booleans())
def test_validate_distribution_accepts_or_refuses(scratch, changes, cut, filename, project,
                                                  allow_zip):
    base = WHEEL if filename.endswith(".whl") or filename.endswith(".zip") else gzip.compress(
        SDIST_TAR, mtime=0)
    path = write(scratch, "upload.bin", mutated(base, changes, cut, None))
    accepted_or_refused(lambda: validate_distribution(
        path, filename, form={"name": "demo", "version": "1.0"}, project_name=project,
        limits=LIMITS, allow_zip_sdist=allow_zip))


# -- structure-aware: archives rebuilt with hostile members, not only flipped bytes ---------------

HOSTILE_NAMES = ["../escape.py", "/absolute.py", "demo/../../up.py", "demo\\back.py", "demo/",
                 "demo//double.py", "demo/\x00nul.py", "demo/\u202eevil.py", "DEMO-1.0.DIST-INFO/x",
                 "demo-1.0.dist-info/RECORD", "demo-1.0.dist-info/METADATA", "a" * 300, "",
                 "demo-1.0.data/scripts/run", "demo-1.0.data/../x", "C:/windows.py", "./demo.py"]
member_names = st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(min_size=1, max_size=40))
ZIP_METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
zip_members = st.lists(st.tuples(
    member_names, st.binary(max_size=200), st.sampled_from(ZIP_METHODS),
    st.sampled_from([0o100644, 0o100755, 0o120777, 0o040755, 0o020644, 0o104755, 0]),
    st.sampled_from([0, 0x1, 0x8, 0x800, 0x41]), st.binary(max_size=12)), max_size=5)


RECORD = "demo-1.0.dist-info/RECORD"


def rebuilt_wheel(extra, drop: set[str], replace_metadata: bytes | None, sign: bool) -> bytes:
    """The wheel with members dropped, METADATA replaced, hostile members added; with
    ``sign``, RECORD rewritten to list them all, so the hostility gets past its check."""
    buf = io.BytesIO()
    written: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(io.BytesIO(WHEEL)) as original, \
            zipfile.ZipFile(buf, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point
        for info in original.infolist():
            if info.filename in drop or (sign and info.filename == RECORD):
                continue
            data = original.read(info)
            if replace_metadata is not None and info.filename.endswith("/METADATA"):
                data = replace_metadata
            archive.writestr(info, data)
            written.append((info.filename, data))
        for name, data, method, mode, flags, extra_field in extra:
            info = zipfile.ZipInfo(name.replace("\x00", "\\0") or "empty", (2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = mode << 16
            info.create_system = 3
            info.extra = extra_field
            info.flag_bits |= flags & ~0x8  # zipfile writes the data descriptor bit itself
            try:
                archive.writestr(info, data)
            except (ValueError, OSError, zipfile.BadZipFile):
                continue  # zipfile will not write it: neither will a real tool
            written.append((info.filename, data))
        if sign:
            lines = [record_line(name, data) for name, data in written] + [f"{RECORD},,"]
            archive.writestr(zipfile.ZipInfo(RECORD, (2024, 1, 1, 0, 0, 0)),
                             "\n".join(lines) + "\n")
    return buf.getvalue()


@FUZZ
@given(zip_members, st.sets(st.sampled_from(sorted(zipfile.ZipFile(io.BytesIO(WHEEL)).namelist())),
                            max_size=2),
       st.none() | st.binary(max_size=300), st.binary(max_size=40), st.booleans())
def test_structurally_hostile_wheels_are_accepted_or_refused(scratch, extra, drop, metadata,
                                                             comment, sign):
    data = rebuilt_wheel(extra, drop, metadata, sign)
    if comment:
        data = data[:-2] + len(comment).to_bytes(2, "little") + comment
    path = write(scratch, "structure.whl", data)
    accepted_or_refused(lambda: inspect_wheel(path, WHEEL_DIST, LIMITS))


TAR_TYPES = [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE,
             tarfile.BLKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE,
             tarfile.GNUTYPE_SPARSE, b"Z"]
pax_values = st.dictionaries(st.sampled_from(["path", "linkpath", "size", "uid", "mtime",
                                              "uname", "GNU.sparse.map", "hdrcharset",
                                              "comment", "SCHILY.xattr.user.x"]),
                             st.text(max_size=30), max_size=3)
tar_members = st.lists(st.tuples(
    st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(min_size=1, max_size=40)).map(
        lambda n: n if n.startswith("demo-1.0/") or not n else "demo-1.0/" + n),
    st.sampled_from(TAR_TYPES), st.binary(max_size=200),
    st.sampled_from(["", "../../etc/passwd", "/etc/passwd", "demo-1.0/PKG-INFO", "x" * 200]),
    st.sampled_from([0o644, 0o755, 0o4755, 0o777, 0o7777]), pax_values), max_size=5)


@FUZZ
@given(tar_members, st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT,
                                     tarfile.PAX_FORMAT]),
       st.none() | st.binary(max_size=300), st.booleans())
def test_structurally_hostile_sdists_are_accepted_or_refused(scratch, extra, fmt, metadata,
                                                             extra_first):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as archive, \
            tarfile.open(fileobj=io.BytesIO(SDIST_TAR)) as original:
        added = []
        for name, kind, data, link, mode, pax in extra:
            info = tarfile.TarInfo(name.replace("\x00", "\\0"))
            info.type, info.linkname, info.mode = kind, link, mode
            if fmt == tarfile.PAX_FORMAT:
                info.pax_headers = pax
            info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
            added.append((info, data))
        own = [(m, original.extractfile(m).read() if m.isfile() else b"")
               for m in original.getmembers()]
        if metadata is not None:
            own = [(m, metadata) if m.name.endswith("/PKG-INFO") else (m, d) for m, d in own]
        for info, data in (added + own if extra_first else own + added):
            if info.isfile():
                info.size = len(data)
            try:
                archive.addfile(info, io.BytesIO(data) if info.size else None)
            except (ValueError, tarfile.TarError, UnicodeError):
                continue  # tarfile will not write it in this format
    path = write(scratch, "structure.tar.gz", gzip.compress(raw.getvalue(), mtime=0))
    accepted_or_refused(lambda: inspect_sdist(path, SDIST_DIST, LIMITS))
