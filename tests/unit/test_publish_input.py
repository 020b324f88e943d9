"""`erp-pipeline publish` checks each event as it was written, as the workers will read it."""

from __future__ import annotations

import json
from typing import Any

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


def _publish(stdin: bytes) -> Any:
    return CliRunner().invoke(publish_cmd, ["erp.submissions", "-"], input=stdin)


def test_input_that_is_not_utf8_is_a_clear_error_and_nothing_is_sent() -> None:
    good = json.dumps(valid_examples()["ItemSubmitted"]).encode()
    result = _publish(good.replace(b'"title": "', b'"title": "\xff', 1))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "nothing was published: not UTF-8" in result.output


def test_json_too_deep_or_an_integer_too_long_is_refused_with_the_codec_reason() -> None:
    # json.loads raises RecursionError / ValueError (not JSONDecodeError) for these: the CLI
    # used to show a traceback instead of naming the problem.
    good = valid_examples()["ItemSubmitted"]
    deep = "[" * 100_000 + "]" * 100_000
    long_int = json.dumps(good).replace('"schema_version": 1', '"schema_version": ' + "9" * 5000)
    array_with_deep = "[" + json.dumps(good) + ", " + "[" * 100_000 + "]" * 100_000 + "]"
    for text in (deep, long_int, array_with_deep, '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"):
        result = _publish(text.encode())
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit), result.exception
        assert "nothing was published" in result.output and "not JSON" in result.output
