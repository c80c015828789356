"""The command line: options from the model, config files, messages and exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from flows.cli import build_parser, main
from flows.errors import ConfigError
from flows.models import RunParameters
from flows.options import resolve_parameters


def test_every_parameter_is_an_option() -> None:
    parser = build_parser()
    run = next(
        action.choices["run"]
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    help_text = run.format_help()
    for name in RunParameters.model_fields:
        assert "--" + name.replace("_", "-") in help_text


def test_config_file_then_options(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('shard_size = 50\ninclude = ["*.md"]\ntask_runner = "thread"\n')
    args = build_parser().parse_args(
        ["run", "--config", str(config), "--shard-size", "7", "--no-default-boilerplate-rules"]
    )
    params = resolve_parameters(args)
    assert (params.shard_size, params.include, params.task_runner) == (7, ["*.md"], "thread")
    assert params.default_boilerplate_rules is False


def test_json_config_and_bad_values(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"shard_size": 0}))
    with pytest.raises(ConfigError, match="shard_size"):
        resolve_parameters(build_parser().parse_args(["run", "--config", str(config)]))
    config.write_text(json.dumps({"no_such_option": 1}))
    with pytest.raises(ConfigError, match="no_such_option"):
        resolve_parameters(build_parser().parse_args(["run", "--config", str(config)]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--source", "/no/such/folder"], "does not exist"),
        (["validate", "--source", "/no/such/folder"], "does not exist"),
        (["run", "--config", "/no/such.toml"], "config file"),
        (["run", "--boilerplate-rules", "/no/rules.toml"], "rule file"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main([*argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("corpus: ") and message in err
    assert err.count("\n") == 1


def test_unwritable_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed_source: Path
) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["run", "--source", str(seed_source), "--out", str(tmp_path / "file" / "out")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_validate_reports_and_exits_non_zero(
    seed_source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--source", str(seed_source)]) == 0
    assert "2 would be published, 0 rejected" in capsys.readouterr().out
    (seed_source / "empty.txt").write_bytes(b"")
    (seed_source / "metadata.jsonl").write_text("{broken\n")
    assert main(["validate", "--source", str(seed_source), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["rejected"] == [
        {
            "source_path": "empty.txt",
            "stage": "encoding",
            "reason": "empty",
            "detail": "file is empty (0 bytes)",
        }
    ]
    assert report["metadata_issues"][0]["problem"] == "not_json"
    assert not (seed_source / "dist").exists()


def test_validate_parallel_matches_serial(seed_source: Path) -> None:
    from flows.engine.pool import PoolRunner
    from flows.engine.run import InlineRunner
    from flows.validate import validate

    for i in range(5):
        (seed_source / f"copy{i}.txt").write_text(
            (seed_source / "001_f6e449bcd0ea5a8d.txt").read_text()
        )
    (seed_source / "empty.txt").write_bytes(b"")
    params = RunParameters(source=str(seed_source), shard_size=2)
    serial = validate(params, InlineRunner())
    parallel = validate(params, PoolRunner(2))
    assert parallel.as_dict() == serial.as_dict()
    # The five copies are exact duplicates of the seed (dedup defaults to near).
    assert serial.languages == {"de": 1, "en": 1}
    assert sorted(r.reason for r in serial.rejected) == ["empty"] + ["exact_duplicate"] * 5
