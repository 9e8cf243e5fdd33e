"""gunicorn's configuration (bastion.server)."""

from gunicorn.config import Config

from bastion.server import gunicorn_options


def test_gunicorn_takes_every_option_and_parses_requests_in_python():
    options = gunicorn_options(host="127.0.0.1", port=8000)
    config = Config()
    for key, value in options.items():
        config.set(key, value)  # raises on an option gunicorn does not know
    # Not whichever parser happens to be installed: the one the suite tests.
    assert config.http_parser == "python"
    assert config.bind == ["127.0.0.1:8000"]
