"""Owners get one mail per release upload batch, not one per file: twine publishes a release
as one request per file, and the Owners hear of all of them at once.

The server queues the mail in a database of its own (no other test's worker may run its
tasks early) and runs no worker: the test starts one once twine is done, as a server's own
worker would run the queued tasks after the quiet period.
"""

from __future__ import annotations

import subprocess
import time

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.artifacts import Sdist, Wheel
from tests.conftest import Server

from .test_mail_queue import BASTION, own_database  # noqa: F401  (a fixture)
from .test_upload_clients import quiet_env, twine_upload


def test_twine_uploading_three_files_mails_each_owner_once(own_database, mailbox, unique,
                                                           tmp_path):
    env, alias = own_database
    server = Server({**mailbox.env, **env, "BASTION_RUN_WORKER": "false",
                     "BASTION_UPLOAD_MAIL_QUIET_SECONDS": "1",
                     "BASTION_BASE_URL": "http://index.example.test",
                     "BASTION_ALLOWED_HOSTS": "127.0.0.1"}, workers=1)
    try:
        # The owner and token live in the server's database, made by its own command.
        name = f"demo-{unique}"
        user = f"o{unique}"
        made = subprocess.run([*BASTION, "admin", "create-user", user, "--email",
                               f"{user}@example.com", "--totp"], env=server.env,
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        minted = subprocess.run([*BASTION, "admin", "create-token", user], env=server.env,
                                capture_output=True, text=True, timeout=60)
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip().splitlines()[-1].strip()
        artifacts = [Wheel(name, "1.2.0"), Wheel(name, "1.2.0", tag="py2.py3-none-any"),
                     Sdist(name, "1.2.0")]
        paths = []
        for artifact in artifacts:
            paths.append(tmp_path / artifact.filename)
            paths[-1].write_bytes(artifact.build())
        result = twine_upload(server, token, paths, quiet_env(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr

        queued = DBTaskResult.objects.using(alias).filter(
            task_path="bastion.packaging.notifications.mail_upload_batch")
        assert queued.count() == 3  # one run per file, none of them run yet
        # Until every run is due; then one worker pass runs them all.
        while queued.filter(run_after__gt=timezone.now()).exists():
            time.sleep(0.1)
        done = subprocess.run([*BASTION, "worker", "--batch"], env=server.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        address = f"{user}@example.com"
        mails = [m for m in mailbox.messages if address in str(m["To"])
                 and "uploaded" in str(m["Subject"])]
        assert [str(m["Subject"]) for m in mails] == [
            f"[Bastion] 3 files uploaded to {name} 1.2.0"]
        body = mails[0].get_body(preferencelist=("plain",)).get_content()
        for artifact in artifacts:
            assert artifact.filename in body
        assert "the new release 1.2.0" in body
        # The link comes from the base URL, not from the address twine used.
        assert f"http://index.example.test/project/{name}/1.2.0/" in body
        assert server.url not in body
        # Nothing is left to mail, and the finished runs left no rows.
        assert not queued.exists()
    finally:
        server.stop()
