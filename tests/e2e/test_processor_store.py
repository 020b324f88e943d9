"""`erp-pipeline run processor` whose configured store cannot be used: a clear error at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import cli, env_for, hiding, wait_for_output, worker


def test_processor_without_its_store_package_exits_at_once_naming_it(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(worker_env, tmp_path / "data", PYTHONPATH=hiding("rocksdict", tmp_path / "lib"))
    env["ERP_TOPIC_PREFIX"] = f"{env['ERP_TOPIC_PREFIX']}nostore."
    result = cli(env, "run", "processor", timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "PROCESSOR_STORE" in result.stderr and "rocksdict" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


def test_a_second_processor_on_the_same_data_dir_exits_and_leaves_the_first_alone(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    # Before, the second one found no clean-shutdown mark, deleted the running processor's
    # local table state, and marked it clean when it stopped.
    env = env_for(worker_env, tmp_path / "data")
    env["ERP_TOPIC_PREFIX"] = f"{env['ERP_TOPIC_PREFIX']}twodirs."
    with worker("processor", env, tmp_path / "first.log") as first:
        wait_for_output(tmp_path / "first.log", r"\[\^Worker\]: Ready", timeout=120, process=first)
        state = tmp_path / "data" / "processor"
        inode = state.stat().st_ino  # deleting and restoring the state would change it
        second = cli(env, "run", "processor", timeout=60)
        assert second.returncode == 1, second.stderr[-2000:]
        assert "another processor" in second.stderr and "DATA_DIR" in second.stderr
        assert "Traceback" not in second.stderr, second.stderr[-2000:]
        assert first.poll() is None, "the first processor stopped"
        assert state.stat().st_ino == inode and any(state.iterdir())


def test_a_worker_missing_a_required_setting_exits_naming_it(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    # `run notifier` without SMTP_URL used to end in a RuntimeError traceback
    env = env_for(worker_env, tmp_path / "data")
    env.pop("SMTP_URL", None)
    result = cli(env, "run", "notifier", timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "SMTP_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("SMTP_URL", "http://mail.example", "SMTP_URL must look like smtp://"),
        ("DATABASE_URL", "garbage", "DATABASE_URL is not a PostgreSQL connection URL"),
        ("KAFKA_BOOTSTRAP_SERVERS", "nonsense", "the Kafka broker at nonsense cannot be used"),
    ],
    ids=["smtp-url", "database-url", "bootstrap"],
)
def test_a_worker_with_a_malformed_setting_exits_naming_it(
    worker_env: dict[str, str], tmp_path: Path, setting: str, value: str, said: str
) -> None:
    # each used to end in a traceback; a malformed DATABASE_URL was not reported at all
    env = {
        **env_for(worker_env, tmp_path / "data"),
        "SMTP_URL": "smtp://127.0.0.1:1",
        setting: value,
    }
    result = cli(env, "run", "notifier", timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert said in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
