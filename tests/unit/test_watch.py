"""What the runner says while it waits for the server (alumdb.runner.watch), without one."""

from __future__ import annotations

import pytest

from alumdb import database, environment
from alumdb.runner import watch


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "if the server's host or network goes away, the run fails within 25s"),
        (
            {"keepalives_idle": "1", "keepalives_interval": "1", "keepalives_count": "2"},
            "if the server's host or network goes away, the run fails within 3s",
        ),
        ({"keepalives": "0"}, "TCP keepalives are off: if the server's host goes away"),
    ],
    ids=["defaults", "from-the-url", "keepalives-off"],
)
def test_silence_limit_follows_the_connection_settings(
    params: dict[str, str], expected: str
) -> None:
    assert database.silence_limit(params).startswith(expected)


def test_a_server_that_does_not_answer_is_said_so() -> None:
    params = {"host": "127.0.0.1", "port": environment.free_port(), "user": "x", "dbname": "x"}
    said = watch.server_view(params, 12345)
    assert said.startswith("no answer from the server to a second connection (")
    assert "refused" in said
