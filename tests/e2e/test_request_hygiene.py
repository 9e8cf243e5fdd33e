import pytest
import requests


@pytest.mark.parametrize("path", ["/project/x%00/", "/simple/x%00/", "/search/?q=a%00b",
                                  "/pypi/x%00/json", "/packages/aa/bb/cc/x%00.whl"])
def test_nul_in_path_or_query_is_a_clear_400(server, path):
    response = requests.get(server.url + path, timeout=10)
    assert response.status_code == 400
    assert "NUL" in response.text
