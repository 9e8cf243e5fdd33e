"""The server's task worker is replaced if it dies, and not once the server stops."""

from __future__ import annotations

import subprocess
import sys
import time

from bastion import worker


def test_a_worker_that_dies_is_replaced_until_the_server_stops(monkeypatch):
    monkeypatch.setattr(worker, "RESTART_DELAY_SECONDS", 0.01)
    spawned: list[subprocess.Popen] = []

    def spawn(self):
        # The first two "workers" die at once; the third keeps running.
        command = [sys.executable, "-c", "pass"] if len(spawned) < 2 else ["sleep", "60"]
        spawned.append(subprocess.Popen(command))
        return spawned[-1]

    monkeypatch.setattr(worker._Supervisor, "_spawn", spawn)
    supervisor = worker._Supervisor()
    supervisor.start()
    deadline = time.monotonic() + 10
    while len(spawned) < 3:
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.01)
    supervisor.stop()
    assert spawned[-1].poll() is not None  # stopped with the server
    time.sleep(0.1)
    assert len(spawned) == 3
