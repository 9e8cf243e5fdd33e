"""The console's Event log: filters, sentences that read the same on every log page,
exports as JSON Lines and CSV, and the hash chain's state."""

from __future__ import annotations

import csv
import html
import io
import json
import re

from django.db import transaction
from django.utils import timezone

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import RequestInfo, record, verify_chain
from bastion.tokens.services import create_token
from tests.artifacts import Sdist

from .manage_support import Client, make_user, text_of
from .uploads import upload, uploader

EVENTS = "/admin/events/"


def sequences(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="event-(\d+)"', page)]


def sentence_of(page: str, sequence: int) -> str:
    row = page.split(f'id="event-{sequence}"', 1)[1].split("</tr>", 1)[0]
    cell = re.search(r'<td class="sentence">(.*?)(?:<br>|</td>)', row, re.S).group(1)
    return text_of(cell).strip()


def test_an_upload_reads_the_same_in_the_console_the_users_log_and_the_projects_history(
        server, unique):
    user, token = uploader(description="laptop release")
    sdist = Sdist(f"uxdemo-{unique}", "1.1.0")
    assert upload(server, token, sdist).status_code == 200
    event = SecurityEvent.objects.get(tag=tags.FILE_ADD, user_name=user.username)
    expected = (f"{user.username} uploaded {sdist.filename} with token 'laptop release' "
                "from 127.0.0.1")

    admin = Client(server, make_user("eva", admin=True))
    console = admin.get(f"{EVENTS}?project={sdist.name}&tag=file:add")
    assert sequences(console.text) == [event.sequence]
    own = Client(server, user)
    history = own.get(f"/manage/project/{event.project_name}/history/?tag=file:add")
    log = own.get("/account/security-log/?tag=file:add")
    for page in (console, history, log):
        assert page.status_code == 200
        assert sentence_of(page.text, event.sequence) == expected
    assert "key=" not in console.text and "token_id=" not in history.text


def test_the_log_is_filtered_by_actor_project_tag_ip_and_days(server):
    actor, other = make_user("eac"), make_user("eot")
    here = RequestInfo(ip_address="10.0.0.5", user_agent="pytest")
    create_token(actor, description="from ten", info=here)
    create_token(actor, description="from elsewhere", info=RequestInfo(ip_address="192.0.2.9"))
    create_token(other, description="other", info=here)
    admin = Client(server, make_user("eva", admin=True))

    def found(query: str) -> list[str]:
        page = admin.get(f"{EVENTS}?{query}")
        assert page.status_code == 200, query
        return [sentence_of(page.text, n) for n in sequences(page.text)]

    by_ip = found(f"actor={actor.username}&ip=10.0.0.5&tag=account:api_token")
    assert by_ip == [f"{actor.username} created the API token 'from ten' (upload, user-wide, "
                     "never expires) from 10.0.0.5"]
    assert len(found(f"ip=10.0.0.5&tag=account:api_token:added&user={other.username}")) == 1
    # A network finds every address inside it, of any prefix length, and none outside.
    create_token(actor, description="from v6", info=RequestInfo(ip_address="2001:db8::7"))
    for network, count in [("10.0.0.0/8", 1), ("10.0.0.4/30", 1), ("10.0.0.0/30", 0),
                           ("192.0.2.0/24", 1), ("0.0.0.0/0", 2), ("2001:db8::/32", 1),
                           ("::/0", 1)]:
        assert len(found(f"actor={actor.username}&ip={network}&tag=account:api_token:added")) \
            == count, network
    today = timezone.now().strftime("%Y-%m-%d")
    assert len(found(f"actor={actor.username}&tag=account:api_token&since={today}&until={today}")) == 3
    assert found(f"actor={actor.username}&since=2001-01-01&until=2001-01-02") == []


def test_the_log_pages_back_with_older_links(server):
    actor = make_user("epg")
    for n in range(55):
        create_token(actor, description=f"t{n}")
    admin = Client(server, make_user("eva", admin=True))
    first = admin.get(f"{EVENTS}?actor={actor.username}&tag=account:api_token:added")
    newest = sequences(first.text)
    assert len(newest) == 50 and newest == sorted(newest, reverse=True)
    older = re.search(r'id="older" href="\?([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = sequences(admin.get(f"{EVENTS}?{older}").text)
    assert len(second) == 5 and max(second) < min(newest)


def test_bad_filters_get_a_one_line_error_never_a_500(server):
    admin = Client(server, make_user("eva", admin=True))
    for query, message in [("since=garbage", "'since' must be a date"),
                           ("until=2024-13-01", "'until' must be a date"),
                           ("since=2024-02-02&until=2024-01-01", "must not be after"),
                           ("ip=10.0.0.300", "is not an IP address"),
                           ("ip=10.0.0.0/33", "is not an IP network"),
                           ("ip=10.0.0.0/", "is not an IP network"),
                           ("before=abc", "'before' must be"), ("before=-1", "'before' must be")]:
        page = admin.get(f"{EVENTS}?{query}")
        assert page.status_code == 400, query
        assert message in html.unescape(re.search(r'id="form-error">([^<]*)<', page.text).group(1)), query
    assert admin.get(f"{EVENTS}export.csv?ip=nope").status_code == 400
    assert admin.get(f"{EVENTS}export.xml").status_code == 404
    assert admin.get(f"{EVENTS}?actor=" + "x" * 5000).status_code == 200
    assert admin.get(f"{EVENTS}?actor=%00%01&ip=%00").status_code == 400


def test_exports_stream_the_filtered_log_and_neutralise_spreadsheet_formulas(server):
    actor = make_user("eex")
    hostile = RequestInfo(ip_address="10.0.0.7", user_agent="=HYPERLINK(\"http://evil\")")
    create_token(actor, description="@SUM(1+1)", info=hostile)
    create_token(actor, description="-2+3", info=RequestInfo(ip_address="10.0.0.7"))
    admin = Client(server, make_user("eva", admin=True))
    query = f"actor={actor.username}&tag=account:api_token:added"

    jsonl = admin.get(f"{EVENTS}export.jsonl?{query}")
    assert jsonl.status_code == 200 and jsonl.headers["Content-Type"].startswith("application/jsonl")
    assert "attachment" in jsonl.headers["Content-Disposition"]
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["additional"]["description"] for r in rows] == ["@SUM(1+1)", "-2+3"]
    assert rows[0]["description"].startswith(f"{actor.username} created the API token '@SUM(1+1)'")
    assert rows[0]["hash"] and rows[1]["previous_hash"]
    assert rows[0]["sequence"] < rows[1]["sequence"]

    exported = admin.get(f"{EVENTS}export.csv?{query}")
    assert exported.status_code == 200 and exported.headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(exported.text)))
    header, body = table[0], table[1:]
    assert header[:3] == ["sequence", "time", "tag"] and "description" in header
    assert len(body) == 2
    for row in body:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    agent = body[0][header.index("user_agent")]
    assert agent == "'=HYPERLINK(\"http://evil\")"


def test_the_page_shows_whether_the_hash_chain_holds_and_where_it_breaks(server):
    admin = Client(server, make_user("eva", admin=True))
    status = text_of(admin.get(EVENTS).text)
    assert "Hash chain intact" in status
    with transaction.atomic():
        target = record(tags.ACCOUNT_LOGOUT, info=RequestInfo(ip_address="192.0.2.1"))
    target = SecurityEvent.objects.get(sequence=target.sequence)
    SecurityEvent.objects.filter(pk=target.pk).update(ip_address="198.51.100.66")
    try:
        broken = text_of(admin.get(EVENTS).text)
        assert f"Hash chain BROKEN at event #{target.sequence}: content does not match its hash" \
            in broken
    finally:
        SecurityEvent.objects.filter(pk=target.pk).update(ip_address=target.ip_address)
    assert verify_chain().ok


def test_exports_and_the_log_are_refused_to_all_but_a_fully_signed_in_admin(server):
    for path in (f"{EVENTS}export.jsonl", f"{EVENTS}export.csv"):
        assert Client(server).get(path).headers["Location"].startswith("/account/login/")
        assert Client(server, make_user("em")).get(path).status_code == 403
        assert Client(server, make_user("ep", admin=True, two_factor=False)).get(path).status_code == 403
        stale = Client(server, make_user("es", admin=True), recent=False)
        assert stale.get(path).headers["Location"].startswith("/account/reauthenticate/")


def test_the_json_feed_still_answers(server):
    admin = Client(server, make_user("eva", admin=True))
    feed = admin.get("/admin/events.json?limit=2")
    assert feed.status_code == 200 and len(feed.json()["events"]) == 2


def test_an_admin_anchors_the_head_outside_the_database_from_the_log(server):
    from bastion.events.anchor import read_anchor

    admin = Client(server, make_user("eva", admin=True))
    response = admin.post(f"{EVENTS}anchor/")
    assert response.status_code == 302 and response.headers["Location"] == EVENTS
    written = read_anchor()
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_EVENT_CHAIN_ANCHOR).latest("id")
    assert event.actor_name == admin.user.username
    assert event.additional == {"sequence": written.sequence, "hash": written.hash}
    page = text_of(admin.get(EVENTS).text)
    assert (f"The head of the log is anchored outside the database: event #{written.sequence}"
            in page)
    assert "Anchored the head of the log" in page
    # A form like every other: no token, no anchor; and only for the console's admins.
    assert admin.post(f"{EVENTS}anchor/", csrf=False).status_code == 403
    assert Client(server, make_user("em")).post(f"{EVENTS}anchor/").status_code == 403
