"""`erp-pipeline`: the one command line for users and operators."""

from __future__ import annotations

import click

from consumers.cli.bench import bench_cmd
from consumers.cli.contract import publish_cmd, schemas_cmd, tail_cmd, topics_group
from consumers.cli.demo import demo_cmd
from consumers.cli.erp import erp_group
from consumers.cli.queue import history_cmd, queue_cmd
from consumers.cli.replay import replay_cmd
from consumers.cli.run import db_group, dev_cmd, run_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="erp-pipeline")
def main() -> None:
    """ERP accounting-acceptance pipeline: what may enter the accounting ERP, and who said so.

    Configuration comes from environment variables (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL,
    ERP_TOPIC_PREFIX, ...); see the README.
    """


for command in (
    dev_cmd,
    demo_cmd,
    run_cmd,
    db_group,
    topics_group,
    publish_cmd,
    tail_cmd,
    schemas_cmd,
    queue_cmd,
    history_cmd,
    erp_group,
    replay_cmd,
    bench_cmd,
):
    main.add_command(command)
