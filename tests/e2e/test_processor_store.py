"""`erp-pipeline run processor` whose configured store cannot be used: a clear error at once."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import cli, env_for, hiding


def test_processor_without_its_store_package_exits_at_once_naming_it(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(worker_env, tmp_path / "data", PYTHONPATH=hiding("rocksdict", tmp_path / "lib"))
    env["ERP_TOPIC_PREFIX"] = f"{env['ERP_TOPIC_PREFIX']}nostore."
    result = cli(env, "run", "processor", timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "PROCESSOR_STORE" in result.stderr and "rocksdict" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
