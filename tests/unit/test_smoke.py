import requests


def test_home_page_is_served_with_security_headers(server):
    response = requests.get(server.url + "/", timeout=10)
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
