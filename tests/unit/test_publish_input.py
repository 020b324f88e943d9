"""`erp-pipeline publish` checks each event as it was written, as the workers will read it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from consumers.cli.contract import publish_cmd
from tests.support.events import valid_examples


def test_an_array_element_with_a_key_given_twice_is_refused_and_nothing_is_sent() -> None:
    # Each element used to be parsed and re-serialized, which kept the last of the two keys:
    # the CLI published what every worker refuses.
    good = json.dumps(valid_examples()["ItemSubmitted"])
    doubled = good.replace('"amount": ', '"amount": "1.00", "amount": ', 1)
    result = CliRunner().invoke(publish_cmd, ["erp.submissions", "-"], input=f"[{good}, {doubled}]")
    assert result.exit_code == 1
    assert "nothing was published" in result.output
    assert 'event 2: duplicate key "amount"' in result.output
    assert "event 1" not in result.output
