"""The security log's sentences in the reader's language on every log page, and in English in
every export, whoever downloads it."""

from __future__ import annotations

import json
import re

from bastion.events import tags
from bastion.events.models import SecurityEvent
from tests.artifacts import Sdist

from .manage_support import Client, make_user, text_of
from .uploads import upload, uploader

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


def sentence_of(page: str, sequence: int) -> str:
    row = page.split(f'id="event-{sequence}"', 1)[1].split("</tr>", 1)[0]
    cell = re.search(r'<td class="sentence">(.*?)(?:<br>|</td>)', row, re.S).group(1)
    return text_of(cell).strip()


def test_a_german_reader_reads_the_log_in_german_and_downloads_it_in_english(server, unique):
    user, token = uploader(description="laptop release")
    sdist = Sdist(f"dedemo-{unique}", "1.1.0")
    assert upload(server, token, sdist).status_code == 200
    event = SecurityEvent.objects.get(tag=tags.FILE_ADD, user_name=user.username)
    german = (f"{user.username} hat {sdist.filename} mit dem Token 'laptop release' "
              "hochgeladen (von 127.0.0.1)")
    english = (f"{user.username} uploaded {sdist.filename} with token 'laptop release' "
               "from 127.0.0.1")

    own = Client(server, user)
    own.http.headers.update(GERMAN)
    admin = Client(server, make_user("eva", admin=True))
    admin.http.headers.update(GERMAN)
    pages = {
        "security log": own.get("/account/security-log/?tag=file:add"),
        "history": own.get(f"/manage/project/{event.project_name}/history/?tag=file:add"),
        "console": admin.get(f"/admin/events/?project={sdist.name}&tag=file:add"),
    }
    for where, page in pages.items():
        assert page.status_code == 200, where
        assert page.headers["Content-Language"] == "de", where
        assert sentence_of(page.text, event.sequence) == german, where

    exports = [own.get("/account/security-log/export.jsonl?tag=file:add"),
               own.get(f"/manage/project/{event.project_name}/history/export.jsonl?tag=file:add"),
               admin.get(f"/admin/events/export.jsonl?project={sdist.name}&tag=file:add")]
    for export in exports:
        assert export.status_code == 200, export.url
        rows = [json.loads(line) for line in export.text.splitlines()]
        assert [row["description"] for row in rows] == [english], export.url

    english_reader = Client(server, user)
    english_reader.http.headers.update({"Accept-Language": "en"})
    page = english_reader.get("/account/security-log/?tag=file:add")
    assert sentence_of(page.text, event.sequence) == english
