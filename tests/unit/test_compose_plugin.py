"""Finding the compose v2 plugin without starting a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from alumdb import environment


def test_executable_plugin_in_the_docker_config_folder_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setattr(environment, "SYSTEM_PLUGIN_DIRS", ())
    plugin = tmp_path / "cli-plugins" / "docker-compose"
    assert not environment.compose_plugin_installed()

    plugin.parent.mkdir()
    plugin.write_text("#!/bin/sh\n")
    assert not environment.compose_plugin_installed()  # not executable: the CLI skips it

    plugin.chmod(0o755)
    assert environment.compose_plugin_installed()


def test_system_plugin_folders_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    system = tmp_path / "system"
    monkeypatch.setattr(environment, "SYSTEM_PLUGIN_DIRS", (str(tmp_path / "none"), str(system)))
    assert not environment.compose_plugin_installed()

    system.mkdir()
    (system / "docker-compose").write_text("#!/bin/sh\n")
    (system / "docker-compose").chmod(0o755)
    assert environment.compose_plugin_installed()
