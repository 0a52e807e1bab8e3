"""The test session's user list (tests/support/cluster.py): a killed session does not keep the regions up."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.cluster import live_users


def test_only_running_pids_count_as_users_so_a_killed_session_leaves_no_user_behind(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    users = tmp_path / "session.users"
    users.write_text(json.dumps([gone.pid, os.getpid()]))
    assert live_users(users) == [os.getpid()]


def test_a_count_left_by_an_older_session_and_a_missing_file_mean_no_users(tmp_path: Path) -> None:
    users = tmp_path / "session.users"
    assert live_users(users) == []
    users.write_text("1")
    assert live_users(users) == []
    users.write_text("not json")
    assert live_users(users) == []
