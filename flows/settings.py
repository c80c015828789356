"""Turn run parameters, config files and rule files into what the stages need."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flows import PIPELINE_VERSION
from flows.errors import ConfigError, RulesError
from flows.models import QualityThresholds, RuleFile, RunParameters
from flows.stages.boilerplate import HEURISTICS, RuleSet, compile_rule
from flows.stages.compose import StageConfig
from flows.stages.dedup import SIGNATURE
from flows.stages.encoding import EncodingSettings
from flows.stages.language import LanguageSettings, primary_subtag
from flows.stages.quality import PRESETS, Bound, Thresholds

DEFAULT_RULES = "boilerplate.toml"

# Parameters that decide where and how a run executes but not what it publishes: they stay
# out of the configuration fingerprint, so moving the output or adding workers keeps it.
_EXECUTION_ONLY = frozenset(
    {
        "source",
        "out",
        "shard_size",
        "target_file_bytes",
        "workers",
        "task_runner",
        "dask_address",
        "keep_releases",
        "timeout_minutes",
        "force_release",
    }
)


def validation_message(error: ValidationError, where: str) -> str:
    first = error.errors(include_url=False)[0]
    field = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {field}: {first['msg']}{more}"


def load_config_file(path: str) -> dict[str, Any]:
    """Read a TOML or JSON config file whose keys are RunParameters fields."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"config file {path!r}: {error.strerror or error}") from error
    try:
        data: Any = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(
            f"config file {path!r} is not valid {file.suffix or 'TOML'}: {error}"
        ) from error
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r} must hold a table/object of parameters")
    return data


def parameters(values: dict[str, Any], where: str = "parameters") -> RunParameters:
    try:
        return RunParameters.model_validate(values)
    except ValidationError as error:
        raise ConfigError(validation_message(error, where)) from error


def parse_rules(text: str, origin: str) -> RuleSet:
    """Validate and compile a TOML rule file's text."""
    try:
        parsed = RuleFile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"rule file {origin}: not valid TOML: {error}") from error
    except ValidationError as error:
        raise RulesError(validation_message(error, f"rule file {origin}")) from error
    compiled = []
    for rule in parsed.rules:
        if not rule.phrases and not rule.pattern:
            raise RulesError(
                f"rule file {origin}: rule {rule.name!r} has neither phrases nor pattern"
            )
        try:
            compiled.append(
                compile_rule(rule.name, rule.position, rule.max_chars, rule.phrases, rule.pattern)
            )
        except re.error as error:
            raise RulesError(
                f"rule file {origin}: rule {rule.name!r}: bad pattern: {error}"
            ) from error
    return RuleSet(tuple(compiled))


def rule_texts(params: RunParameters) -> list[tuple[str, str]]:
    """(origin, TOML text) of every rule file the run uses, built-in first."""
    texts: list[tuple[str, str]] = []
    if params.default_boilerplate_rules:
        builtin = resources.files("flows.rules").joinpath(DEFAULT_RULES).read_text(encoding="utf-8")
        texts.append((f"(built-in) {DEFAULT_RULES}", builtin))
    for path in params.boilerplate_rules:
        try:
            texts.append((path, Path(path).read_text(encoding="utf-8")))
        except OSError as error:
            raise RulesError(f"rule file {path!r}: {error.strerror or error}") from error
    return texts


def load_rules(params: RunParameters) -> tuple[RuleSet, str]:
    """The rule set and a hash of the rule files' text (part of the config fingerprint)."""
    rules = RuleSet(())
    digest = hashlib.sha256()
    for origin, text in rule_texts(params):
        rules = rules + parse_rules(text, origin)
        digest.update(text.encode("utf-8"))
    names = [rule.name for rule in rules.rules]
    # The built-in heuristics (outside-main-content) can be switched off by name too.
    unknown = sorted(set(params.disabled_rules) - set(names) - HEURISTICS)
    if unknown:
        raise RulesError(f"disabled_rules names unknown rules: {', '.join(unknown)}")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise RulesError(f"rule names must be unique; repeated: {', '.join(duplicated)}")
    return rules.without(params.disabled_rules), digest.hexdigest()


def quality_thresholds(params: RunParameters) -> Thresholds | None:
    """The thresholds ``quality_filters`` names: None for off, a preset, or a TOML file."""
    choice = params.quality_filters
    if choice == "off":
        return None
    if choice in PRESETS:
        return PRESETS[choice]
    try:
        text = Path(choice).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"quality_filters {choice!r}: not off, gopher, c4 or fineweb, and not a readable "
            f"file ({error.strerror or error})"
        ) from error
    try:
        parsed = QualityThresholds.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"quality thresholds {choice}: not valid TOML: {error}") from error
    except ValidationError as error:
        raise ConfigError(validation_message(error, f"quality thresholds {choice}")) from error
    return {
        name: Bound(bound.min, bound.max)
        for name, bound in parsed
        if bound is not None and (bound.min is not None or bound.max is not None)
    }


def stage_config(params: RunParameters, rules: RuleSet) -> StageConfig:
    return StageConfig(
        encoding=EncodingSettings(
            prefix_bytes=params.encoding_prefix_bytes,
            min_confidence=params.min_encoding_confidence,
            flag_confidence=params.encoding_flag_confidence,
            repair_mojibake=params.repair_mojibake,
        ),
        language=LanguageSettings(
            sample_chars=params.language_sample_chars,
            min_letters=params.language_min_letters,
            min_confidence=params.language_min_confidence,
            seed=params.language_seed,
            paragraph_samples=params.language_paragraph_samples,
            mixed_below=params.language_mixed_below,
        ),
        rules=rules,
        reject_language_mismatch=params.on_language_mismatch == "reject",
        allowed_languages=frozenset(primary_subtag(tag) for tag in params.allowed_languages),
        unknown_metadata=params.unknown_metadata,
        pipeline_version=PIPELINE_VERSION,
        quality=quality_thresholds(params),
    )


# Parameters that only the corpus step reads: they change which rows are published, not how
# a document's row is made, so they stay out of the per-document processing key.
_CORPUS_ONLY = frozenset(
    {
        "dedup",
        "dedup_threshold",
        "dedup_against",
        "furniture_min_docs",
        "furniture_min_share",
        "translation_pairs",
        "translation_cleaning",
    }
)


def config_fingerprint(
    params: RunParameters, rules_digest: str, *, per_document: bool = False
) -> str:
    """Hash of everything that can change a published row; ``per_document`` leaves out what
    only the corpus step reads (the processing key of each input uses that one)."""
    excluded = set(_EXECUTION_ONLY) | (set(_CORPUS_ONLY) if per_document else set())
    relevant = params.model_dump(mode="json", exclude=excluded)
    payload = json.dumps(
        {
            "parameters": relevant,
            "rules": rules_digest,
            "pipeline": PIPELINE_VERSION,
            # Every document's facts hold its signature: a new n-gram, seed or library
            # version makes every row again.
            "signature": SIGNATURE.describe(),
            # A thresholds file is named by its path: its bounds are what decide rows.
            "quality": {
                name: [bound.min, bound.max]
                for name, bound in sorted((quality_thresholds(params) or {}).items())
            },
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
