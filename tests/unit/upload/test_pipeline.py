import base64

import pytest
from django.test import RequestFactory

from bastion.accounts.services import create_user
from bastion.tokens.services import TokenError, create_token
from bastion.upload.pipeline import _check_credentials_present


def basic(secret: str) -> str:
    return "Basic " + base64.b64encode(f"__token__:{secret}".encode()).decode()


def test_forged_signature_on_a_real_token_id_is_refused_before_the_body_is_read(unique):
    user = create_user(f"p{unique}", f"p{unique}@example.com", email_verified=True)
    token, _row = create_token(user)
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    request = RequestFactory().post("/legacy/", HTTP_AUTHORIZATION=basic(forged))
    with pytest.raises(TokenError):
        _check_credentials_present(request)
    genuine = RequestFactory().post("/legacy/", HTTP_AUTHORIZATION=basic(token))
    assert _check_credentials_present(genuine)[0].user == user
