"""``corpus``: the command line. Every CorpusError becomes one line and an exit code here.

The options of ``run`` and ``validate`` are generated from :class:`RunParameters`, the same
model the Prefect UI renders as a form, so the two can never disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from flows.errors import CorpusError
from flows.models import RunParameters
from flows.orchestration.server import LocalServerError, TemporaryServer

logger = logging.getLogger("flows.cli")

EXIT_OK = 0
EXIT_REJECTED = 1


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _base_type(annotation: Any) -> Any:
    """``Annotated[str, ...]`` -> ``str``."""
    while hasattr(annotation, "__metadata__"):
        annotation = get_args(annotation)[0]
    return annotation


def _add_parameter(parser: argparse.ArgumentParser, name: str, info: FieldInfo) -> None:
    flag = "--" + name.replace("_", "-")
    default = info.get_default(call_default_factory=True)
    # argparse %-formats help strings; descriptions may say "98 %".
    help_text = f"{info.description} (default: {default!r})".replace("%", "%%")
    annotation = _strip_optional(info.annotation)
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    if annotation is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        return
    if get_origin(annotation) is list:
        parser.add_argument(flag, nargs="+", action="extend", metavar="VALUE", **kwargs)
        return
    if get_origin(annotation) is Literal:
        parser.add_argument(flag, choices=[str(a) for a in get_args(annotation)], **kwargs)
        return
    base = _base_type(annotation)
    parser.add_argument(
        flag, type=base if base in (int, float) else str, metavar=name.upper(), **kwargs
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML or JSON file of run parameters.")
    for name, info in RunParameters.model_fields.items():
        _add_parameter(parser, name, info)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpus",
        description="Validate, clean and publish a folder of documents as a versioned Parquet corpus.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="Run the Prefect flow and publish a release.")
    _add_run_options(run)
    run.add_argument(
        "--fail-on-reject", action="store_true", help="Exit 1 when any input was rejected."
    )

    validate = commands.add_parser(
        "validate", help="Run every check, publish nothing; exit 1 if anything would be rejected."
    )
    _add_run_options(validate)
    validate.add_argument("--json", action="store_true", help="Print the report as JSON.")

    report = commands.add_parser(
        "boilerplate-report",
        help="List lines that repeat across many documents (boilerplate candidates).",
    )
    report.add_argument("--source", required=True, metavar="DIR", help="Folder of documents.")
    report.add_argument(
        "--min-docs",
        type=int,
        default=5,
        metavar="N",
        help="Report lines found in at least N documents (default: 5).",
    )
    report.add_argument(
        "--include", nargs="+", default=["*.txt"], metavar="GLOB", help="Globs of documents."
    )
    report.add_argument(
        "--out", metavar="FILE", help="Also write the candidates as a TOML rule file to review."
    )
    report.add_argument(
        "--limit", type=int, default=50, metavar="N", help="Print at most N candidates."
    )

    schemas = commands.add_parser("schemas", help="Write schemas/*.schema.json from the models.")
    schemas.add_argument("--check", action="store_true", help="Fail if the files differ.")
    schemas.add_argument("--dir", default="schemas", help="Folder of the schema files.")

    serve = commands.add_parser(
        "serve",
        help="Start a local Prefect server on 127.0.0.1, create the work pool, deploy "
        "prefect.yaml and run a worker, until Ctrl-C.",
    )
    serve.add_argument("--port", type=int, default=4200, help="Server port (default 4200).")
    serve.add_argument(
        "--home",
        default=str(Path.home() / ".prefect"),
        help="PREFECT_HOME: where the server keeps its SQLite database.",
    )
    serve.add_argument("--project", default=".", help="Folder holding prefect.yaml.")
    serve.add_argument("--no-worker", action="store_true", help="Do not start a worker.")
    return parser


def resolve_parameters(args: argparse.Namespace) -> RunParameters:
    """Defaults < config file < command-line options."""
    from flows.settings import load_config_file, parameters

    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    values.update({k: v for k, v in vars(args).items() if k in RunParameters.model_fields})
    return parameters(values, where=f"config {args.config}" if args.config else "options")


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """Use the configured Prefect API; otherwise one temporary local server for the run.

    Prefect would start its own temporary server in every worker process of the process
    pool (10+ s each, and their task runs land in different databases); exporting the URL
    of a single server makes the workers report to it. The server is started before
    Prefect is imported, so its ~10 s boot overlaps the CLI's ~4 s of imports.
    """
    server: TemporaryServer | None = None
    if not os.environ.get("PREFECT_API_URL"):
        # Started on speculation: only Prefect's settings (profiles, prefect.toml) can say
        # whether an API is configured, and reading them imports Prefect (~3 s).
        fd, log_name = tempfile.mkstemp(prefix="corpus-prefect-server-", suffix=".log")
        os.close(fd)
        server = TemporaryServer(Path(log_name))
        server.start()
    try:
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        import flows.orchestration.flow  # noqa: F401  # the expensive import, while the server boots

        if server is None or get_current_settings().api.url:
            _stop_server(server)
            server = None
            yield
            return
        logger.info("PREFECT_API_URL is not set: starting a temporary Prefect server")
        try:
            server.wait_healthy(float(os.environ.get("CORPUS_SERVER_STARTUP_SECONDS", "120")))
        except LocalServerError as error:
            raise CorpusError(
                f"could not start a temporary Prefect server ({error}); "
                "start one with `prefect server start` and set PREFECT_API_URL"
            ) from error
        logger.info("temporary Prefect server on %s", server.api_url)
        # Through the environment, so the pool's worker processes inherit it, and into
        # Prefect's global settings, which every thread of this process reads (a
        # temporary_settings context would cover this thread only).
        os.environ["PREFECT_API_URL"] = server.api_url
        refresh_global_settings_context()
        try:
            yield
        finally:
            os.environ.pop("PREFECT_API_URL", None)
            _drain_prefect_workers()
            refresh_global_settings_context()
    finally:
        _stop_server(server)


def _drain_prefect_workers() -> None:
    # Send the last logs and events while the server still listens; otherwise the log
    # worker retries against a closed port at exit.
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


def _stop_server(server: TemporaryServer | None) -> None:
    if server is None:
        return
    server.stop()
    with contextlib.suppress(OSError):
        server.log_path.unlink()


def _run(args: argparse.Namespace) -> int:
    from flows.engine.plan import preflight

    params = resolve_parameters(args)
    # A bad source, output or rule file fails here, before a server starts (the flow's
    # prepare step runs the same check again, where a deployment starts it).
    preflight(params)
    with prefect_api():
        from flows.orchestration.flow import corpus_release

        result = corpus_release(params)
    sys.stdout.write(
        f"published {result.published} of {result.inputs} inputs "
        f"({result.rejected} rejected, {result.skipped} skipped, {result.reused} unchanged and reused, "
        f"{result.metadata_issues} metadata issues) -> {result.path}\n"
    )
    return EXIT_REJECTED if args.fail_on_reject and result.rejected else EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from flows.engine.pool import PoolRunner
    from flows.validate import render_report, validate

    params = resolve_parameters(args)
    report = validate(params, PoolRunner(params.workers))
    sys.stdout.write(
        json.dumps(report.as_dict(), indent=2) + "\n" if args.json else render_report(report)
    )
    return EXIT_REJECTED if report.rejected or report.metadata_issues else EXIT_OK


def _boilerplate_report(args: argparse.Namespace) -> int:
    from flows.engine.plan import prepare
    from flows.engine.shard import read_inputs
    from flows.learn import LineCounter, rule_file
    from flows.stages.encoding import decode
    from flows.stages.types import Rejection

    params = RunParameters(source=args.source, include=args.include)
    if args.min_docs < 1:
        sys.stderr.write("corpus: --min-docs must be at least 1\n")
        return 2
    plan = prepare(params, publish=False)
    counter = LineCounter()
    unreadable = 0
    for job in plan.shards:
        for item in read_inputs(job, str(plan.root), params.max_file_bytes):
            decoded = (
                item.payload
                if isinstance(item.payload, Rejection)
                else decode(item.payload, plan.config.encoding)
            )
            if isinstance(decoded, Rejection):
                unreadable += 1
                continue
            counter.add(decoded.text)
    candidates = counter.candidates(args.min_docs, plan.config.rules)
    sys.stdout.write(
        f"{len(candidates)} lines in at least {args.min_docs} of {counter.documents} "
        f"documents ({unreadable} inputs not readable as text)\n"
        "  docs  share  times  already removed by  line\n"
    )
    for c in candidates[: args.limit]:
        sys.stdout.write(
            f"{c.documents:6d} {c.share:6.0%} {c.occurrences:6d}  "
            f"{c.covered_by or '-':17.17s}  {c.text[:100]}\n"
        )
    if args.out:
        Path(args.out).write_text(rule_file(candidates, source=args.source), encoding="utf-8")
        sys.stdout.write(f"wrote {args.out}: review it, then pass it with --boilerplate-rules\n")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from flows.orchestration.server import local_prefect

    project = Path(args.project).resolve()
    if not (project / "prefect.yaml").is_file():
        raise CorpusError(f"no prefect.yaml in {project}")
    with local_prefect(Path(args.home), port=args.port) as stack:
        stack.create_pool()
        stack.deploy_all(project)
        if not args.no_worker:
            stack.start_worker(project)
        sys.stdout.write(
            f"Prefect UI and API: http://127.0.0.1:{args.port} (logs: {args.home}/corpus-server.log)\n"
            f"In another shell:   export PREFECT_API_URL={stack.api_url}\n"
            "Run now:            prefect deployment run corpus-release/manual "
            '--params \'{"params": {"source": "seeds", "out": "dist"}}\'\n'
            "The nightly deployment runs at 02:00 UTC. Ctrl-C stops the worker and the server.\n"
        )
        sys.stdout.flush()
        while all(process.poll() is None for process in stack.processes):
            time.sleep(1)
        failed = [p.args for p in stack.processes if p.poll() is not None]
        raise CorpusError(f"a Prefect process exited: {failed}")


def _schemas(args: argparse.Namespace) -> int:
    from flows.schemas import check_schemas, write_schemas

    folder = Path(args.dir)
    if args.check:
        drifted = check_schemas(folder)
        for name in drifted:
            sys.stderr.write(
                f"corpus: {folder / name} differs from the model; run `corpus schemas`\n"
            )
        return EXIT_REJECTED if drifted else EXIT_OK
    for path in write_schemas(folder):
        sys.stdout.write(f"wrote {path}\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Our own loggers at INFO; third-party ones (httpx logs every API call) at WARNING.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("flows").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    handlers = {
        "run": _run,
        "validate": _validate,
        "schemas": _schemas,
        "boilerplate-report": _boilerplate_report,
        "serve": _serve,
    }
    try:
        return handlers[args.command](args)
    except CorpusError as error:
        sys.stderr.write(f"corpus: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("corpus: interrupted; the previous release is still current\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
