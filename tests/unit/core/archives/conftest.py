import pytest

from bastion.core.filenames import parse_filename
from tests.unit.core.archives.support import WHEEL_NAME


@pytest.fixture
def archive_file(tmp_path):
    def write(data: bytes, filename: str = WHEEL_NAME):
        path = tmp_path / filename
        path.write_bytes(data)
        return str(path), parse_filename(filename, allow_zip_sdist=True)
    return write
