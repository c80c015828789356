"""pydantic models: the source of truth for every contract the pipeline publishes.

``schemas/*.schema.json`` are generated from the models listed in :data:`PUBLISHED_MODELS`
(``corpus schemas``) and a test fails when they drift.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

# Bidirectional controls (embeddings, overrides, isolates, LRM/RLM, the Arabic letter mark):
# invisible, and they reorder what follows them on screen ("Trojan Source").
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
# Terminal escape sequences go whole: dropping only the ESC would leave "[31m" in a title.
_ESCAPE_SEQUENCES = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])"
)
# Line and tab characters separate words: they become one space rather than glue words.
_BREAKS = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]+")
# Every other control character (Unicode category Cc), the bidi controls and U+FEFF (a BOM
# that survived a concatenation; the encoding stage drops it from the text too) go.
_INVISIBLE = re.compile(f"[\x00-\x1f\x7f-\x9f\ufeff{BIDI_CONTROLS}]")


def clean_free_text(value: str) -> str:
    """A metadata string fit for any consumer: no control or bidi characters, NFC, stripped.

    The same treatment the document text gets (the encoding stage); controls go before NFC,
    which then composes across them. A value that was nothing but such characters is
    invalid rather than silently empty.
    """
    value = _ESCAPE_SEQUENCES.sub("", value)
    value = _BREAKS.sub(" ", value)
    value = _INVISIBLE.sub("", value)
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ValueError("nothing left after removing control and bidi characters")
    return value


FreeText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(clean_free_text)
]

# Characters an id may not hold, by Unicode category: controls (Cc), format characters (Cf:
# zero-width characters, bidi controls, soft hyphen, BOM), surrogates (Cs), and every kind
# of space and line separator (Zs, Zl, Zp).
_ID_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})
ID_MAX_CHARS = 200


def check_id(value: str) -> str:
    """An id safe in file names, URLs and joins, or ValueError saying what is wrong.

    Not normalised silently: an id is a key that other systems hold, so changing it would
    break their joins; a non-NFC id is invalid instead. No path separators and no leading
    dot, so no id is or contains a ``..`` segment.
    """
    if unicodedata.normalize("NFC", value) != value:
        raise ValueError("must be in Unicode normalisation form NFC (composed characters)")
    for char in value:
        if char in "/\\":
            raise ValueError(f"must not contain {char!r} (a path separator)")
        category = unicodedata.category(char)
        if category in _ID_FORBIDDEN_CATEGORIES or char.isspace():
            raise ValueError(
                f"must not contain U+{ord(char):04X} (a control, format, bidi, space or "
                "separator character)"
            )
    if value.startswith("."):
        raise ValueError("must not start with '.'")
    return value


DocumentId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ID_MAX_CHARS),
    AfterValidator(check_id),
    # For schema readers: the part of check_id a JSON Schema pattern can say.
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": ID_MAX_CHARS,
            "pattern": "^[^./\\\\\\s\\u0000-\\u001f\\u007f-\\u009f][^/\\\\\\s\\u0000-\\u001f\\u007f-\\u009f]*$",
        }
    ),
]
LanguageTag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$"),
]


class DocumentMetadata(BaseModel):
    """One line of ``SOURCE/metadata.jsonl`` (the Hugging Face folder-dataset convention).

    Unknown fields are kept: with ``unknown_metadata = "keep"`` (default) they are published
    as a JSON object in the ``metadata_extra`` column; with ``"reject"`` the document is
    rejected and the detail names the unknown fields.
    """

    model_config = ConfigDict(extra="allow", frozen=True, title="DocumentMetadata")

    file_name: NonEmptyStr = Field(
        description="Path of the document relative to the source root, with '/' separators."
    )
    id: DocumentId | None = Field(
        default=None,
        description=(
            "Unique document id; derived from the file path when absent. NFC, at most 200 "
            "characters, no '/' or '\\', no leading '.', no whitespace, control, format "
            "(zero-width, bidi) or separator characters. Ids equal after NFKC are duplicates."
        ),
    )
    title: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1, max_length=1000),
            AfterValidator(clean_free_text),
        ]
        | None
    ) = Field(
        default=None,
        description=(
            "Title; derived from a title-like first line when absent. Control and bidi "
            "characters are removed (line breaks and tabs become spaces), then NFC."
        ),
    )
    url: AnyHttpUrl | None = Field(default=None, description="Where the document was scraped from.")
    published: AwareDatetime | dt.date | None = Field(
        default=None,
        description=(
            "Publication date (YYYY-MM-DD) or date-time with a UTC offset. "
            "A date-time without offset is rejected: it is ambiguous."
        ),
    )
    authors: list[FreeText] = Field(
        default_factory=list, description="Author names (cleaned like the title)."
    )
    license: FreeText | None = Field(
        default=None,
        description="Licence of the text, preferably an SPDX identifier (cleaned like the title).",
    )
    source: FreeText | None = Field(
        default=None,
        description="Publisher or crawl the document comes from (cleaned like the title).",
    )
    language: LanguageTag | None = Field(
        default=None, description="Declared language (BCP 47, e.g. 'en', 'de-AT', 'zh-cn')."
    )

    @field_validator("file_name")
    @classmethod
    def _relative_inside_root(cls, value: str) -> str:
        path = value.replace("\\", "/")
        if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
            raise ValueError("must be relative to the source root, not absolute")
        if ".." in path.split("/"):
            raise ValueError("must not contain '..' (it would leave the source root)")
        return "/".join(part for part in path.split("/") if part not in {"", "."})

    @field_validator("published")
    @classmethod
    def _representable_in_utc(
        cls, value: dt.datetime | dt.date | None
    ) -> dt.datetime | dt.date | None:
        # The column is UTC: 0001-01-01T00:00:00+01:00 is in year 0 there, which Python's
        # datetime cannot hold; an invalid value, not a crash of the document.
        if isinstance(value, dt.datetime):
            try:
                value.astimezone(dt.UTC)
            except OverflowError:
                raise ValueError("out of range once converted to UTC (years 1 to 9999)") from None
        return value


TaskRunnerName = Literal["process", "thread", "dask"]


class RunParameters(BaseModel):
    """Everything one run needs. The Prefect UI renders this as the run form and the
    ``corpus run`` options are generated from it, so CLI and UI cannot disagree."""

    model_config = ConfigDict(extra="forbid", title="RunParameters")

    source: str = Field(
        default="seeds",
        title="Source folder",
        description="Folder of raw documents, read recursively. Never written to.",
        min_length=1,
    )
    out: str = Field(
        default="dist",
        title="Output folder",
        description="Where releases are published; OUT/current points at the newest.",
        min_length=1,
    )
    include: list[str] = Field(
        default_factory=lambda: ["*.txt"],
        title="Include globs",
        description=(
            "A file is a document when its name (or, for a pattern with '/', its path "
            "relative to the source) matches one of these."
        ),
        min_length=1,
    )
    exclude: list[str] = Field(
        default_factory=list,
        title="Exclude globs",
        description="Files matching any of these are skipped (counted, not rejected).",
    )
    max_file_bytes: int = Field(
        default=50 * 1024 * 1024,
        title="Maximum file size (bytes)",
        description="Larger files are rejected as too_large without being read.",
        ge=1,
    )
    encoding_prefix_bytes: int = Field(
        default=65_536,
        title="Encoding detection sample (bytes)",
        description=(
            "chardet looks at this many leading bytes; if its guess cannot decode the whole "
            "file it looks at everything."
        ),
        ge=1_024,
    )
    min_encoding_confidence: float = Field(
        default=0.0,
        title="Minimum encoding confidence",
        description=(
            "Reject detected (non-BOM, non-UTF-8) encodings below this chardet confidence. "
            "Measured: right guesses on chardet's corpus go down to 0.033, so any floor "
            "above that rejects good files."
        ),
        ge=0.0,
        le=1.0,
    )
    encoding_flag_confidence: float = Field(
        default=0.2,
        title="Flag encoding confidence below",
        description=(
            "chardet guesses below this confidence are published with "
            "encoding_low_confidence = true (measured on chardet's corpus: the wrong guess "
            "scores 0.045, chardet's 'nothing fitted' answer is 0.10, and 10 of 421 right "
            "guesses score under 0.2)."
        ),
        ge=0.0,
        le=1.0,
    )
    repair_mojibake: bool = Field(
        default=True,
        title="Repair mojibake",
        description=(
            "Undo UTF-8 that was read as cp1252/latin-1 and saved again ('FÃ¼r' -> 'Für') "
            "with ftfy, line by line, only where the repair is complete; recorded in "
            "text_repairs."
        ),
    )
    language_sample_chars: int = Field(
        default=1_000,
        title="Language sample (characters)",
        description="langdetect reads the longest lines of the text up to this many characters.",
        ge=100,
        le=100_000,
    )
    language_min_letters: int = Field(
        default=30,
        title="Minimum letters for a language",
        description=(
            "Shorter samples get language 'und' (measured: langdetect is right 91 in 100 "
            "times at 20-30 letters, 97 at 30-40, 98-99 above; CJK characters count twice)."
        ),
        ge=0,
    )
    language_min_confidence: float = Field(
        default=0.95,
        title="Minimum language confidence",
        description="Below this langdetect probability the language is 'und'.",
        ge=0.0,
        le=1.0,
    )
    language_seed: int = Field(
        default=0,
        title="langdetect seed",
        description="Fixed so that two runs on the same input give the same languages.",
        ge=0,
    )
    language_paragraph_samples: int = Field(
        default=6,
        title="Lines sampled for mixed-language check",
        description=(
            "Up to this many lines, spread over the document, are detected one by one to "
            "measure the main language's share (language_share); 0 turns the check off."
        ),
        ge=0,
        le=100,
    )
    language_mixed_below: float = Field(
        default=0.7,
        title="Mixed-language share",
        description="A main-language share below this sets language_mixed.",
        ge=0.0,
        le=1.0,
    )
    on_language_mismatch: Literal["record", "reject"] = Field(
        default="record",
        title="Declared vs detected language",
        description="'record' flags the row (language_mismatch); 'reject' rejects the document.",
    )
    allowed_languages: list[LanguageTag] = Field(
        default_factory=list,
        title="Allowed languages",
        description="If set, documents in other languages (including 'und') are rejected.",
    )
    boilerplate_rules: list[str] = Field(
        default_factory=list,
        title="Extra boilerplate rule files",
        description="TOML rule files applied after the built-in rules.",
    )
    default_boilerplate_rules: bool = Field(
        default=True,
        title="Use built-in boilerplate rules",
        description="Turn off to use only the rule files given above.",
    )
    disabled_rules: list[str] = Field(
        default_factory=list,
        title="Disabled rules",
        description="Names of rules (built-in or from files) not to apply.",
    )
    unknown_metadata: Literal["keep", "reject"] = Field(
        default="keep",
        title="Unknown metadata fields",
        description="'keep' publishes them as JSON in metadata_extra; 'reject' rejects the document.",
    )
    dedup: Literal["off", "exact", "near"] = Field(
        default="near",
        title="Duplicates",
        description=(
            "'near' keeps one copy of each group of documents whose word 5-gram MinHash "
            "similarity reaches dedup_threshold (near_duplicate) or whose normalised text is "
            "identical (exact_duplicate); 'exact' only the latter; 'off' keeps every copy. "
            "Decided across the corpus, after the shards (README: Duplicates)."
        ),
    )
    dedup_threshold: float = Field(
        default=0.8,
        title="Near-duplicate similarity",
        description=(
            "Estimated Jaccard similarity of two texts' 5-gram sets from which the copy "
            "not kept is rejected as near_duplicate (dedup = 'near'). Not below 0.7: "
            "the 14 x 8 LSH bands rarely even compare pairs less similar than that."
        ),
        ge=0.7,
        le=1.0,
    )
    dedup_against: list[str] = Field(
        default_factory=list,
        title="Deduplicate against releases",
        description=(
            "Other release folders (e.g. /data/news/current) whose published documents count "
            "as already published: a copy of one of them is rejected here."
        ),
    )
    furniture_min_docs: int = Field(
        default=5,
        title="Learned furniture: documents",
        description=(
            "A short or non-prose line found in at least this many documents of one source "
            "(metadata 'source'; else the whole corpus) is removed from them as "
            "'repeated-line' (decided across the corpus, after the shards; switch off with "
            "disabled_rules 'repeated-line'). A corpus smaller than this learns nothing."
        ),
        ge=2,
        le=1_000_000,
    )
    furniture_min_share: float = Field(
        default=0.02,
        title="Learned furniture: share",
        description="... and in at least this share of that source's documents.",
        ge=0.0,
        le=1.0,
    )
    quality_filters: str = Field(
        default="off",
        title="Quality filters",
        description=(
            "'off' (default: nothing is dropped unasked), 'gopher', 'c4', 'fineweb', or the "
            "path of a TOML file of thresholds ([signal] min/max). A document outside a "
            "bound is rejected at stage 'quality' with the signal as its reason. The release "
            "report shows what each preset would remove either way (README: Quality signals)."
        ),
        min_length=1,
    )
    translation_pairs: bool = Field(
        default=True,
        title="Translation pairs",
        description=(
            "Link documents that translate each other (one per other language), align their "
            "paragraphs and publish pairs/ and bitext/ (decided across the corpus, after "
            "the shards; README: Translation pairs)."
        ),
    )
    translation_cleaning: bool = Field(
        default=True,
        title="Translation cleaning signal",
        description=(
            "In a confidently linked pair, remove short unpunctuated lines (captions, "
            "labels) that have no counterpart in the translation, as "
            "'no-counterpart-in-translation'."
        ),
    )
    shard_size: int = Field(
        default=200,
        title="Documents per task",
        description="Each Prefect task processes one shard; Prefect costs milliseconds per task.",
        ge=1,
        le=100_000,
    )
    target_file_bytes: int = Field(
        default=256 * 1024 * 1024,
        title="Target size of a published file (bytes)",
        description=(
            "Each published table is packed into Parquet files of about this size (the shard "
            "parts are merged up to it); one changed document rewrites one such file."
        ),
        ge=1024,
    )
    workers: int = Field(
        default=0,
        title="Worker processes",
        description="Parallel workers for the process or thread runner; 0 means one per CPU.",
        ge=0,
        le=256,
    )
    task_runner: TaskRunnerName = Field(
        default="process",
        title="Task runner",
        description="'process' (default, uses every core), 'thread', or 'dask' (needs dask_address).",
    )
    dask_address: str | None = Field(
        default=None,
        title="Dask scheduler address",
        description="tcp://host:8786 of an existing Dask cluster, for task_runner = 'dask'.",
    )
    keep_releases: int = Field(
        default=5,
        title="Releases to keep",
        description="Older releases are pruned after a successful publish.",
        ge=1,
    )
    timeout_minutes: int = Field(
        default=360,
        title="Run timeout (minutes)",
        description="The run fails after this long; the previous release stays current.",
        ge=1,
        le=7 * 24 * 60,
    )
    force_release: bool = Field(
        default=False,
        title="Publish even if unchanged",
        description=(
            "Without it, a run whose source and configuration equal the current release's "
            "publishes nothing and says 'unchanged: current is <id>'."
        ),
    )


class DataFile(BaseModel):
    """One Parquet file of a release."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="Relative to the release folder.")
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class MetadataIssue(BaseModel):
    """A metadata.jsonl line that could not be attached to a document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: int = Field(ge=1)
    problem: str
    detail: str


class Manifest(BaseModel):
    """``manifest.json`` of a release."""

    model_config = ConfigDict(extra="forbid", title="Manifest")

    release_id: str
    created_at: AwareDatetime
    pipeline_version: str
    document_schema_version: int
    rejected_schema_version: int
    input_fingerprint: str = Field(description="sha256 over every input's path and bytes hash.")
    config_fingerprint: str = Field(description="sha256 of the parameters that affect output.")
    source_fingerprint: str = Field(
        default="",
        description=(
            "sha256 over everything read from the source (each input's path, id, size, "
            "metadata and bytes hash, skipped files, metadata issues), the dedup_against "
            "releases and the pipeline's code: equal, with config_fingerprint, means a run "
            "would publish this release again."
        ),
    )
    source_shards: list[str] = Field(
        default_factory=list,
        description=(
            "source_fingerprint's part per shard (of parameters.shard_size inputs): an "
            "unchanged check stops reading at the first shard that differs."
        ),
    )
    counts: dict[str, int] = Field(description="inputs, published, rejected, skipped.")
    languages: dict[str, int]
    rejection_reasons: dict[str, int]
    files: list[DataFile]
    metadata_issues: list[MetadataIssue]
    parameters: dict[str, Any]
    corpus: dict[str, int] = Field(
        default_factory=dict,
        description="What the corpus step decided across documents (e.g. exact_duplicate).",
    )
    dedup: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "How duplicates were decided: method, normalisation, n-gram, permutations, "
            "bands x rows, threshold, seed, library and version (counts are in corpus)."
        ),
    )
    pairs: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Translation pairs: candidates, translation_pairs, pairs_reused, "
            "bitext_segments and no-counterpart-in-translation lines removed."
        ),
    )
    warnings: list[str] = Field(
        default_factory=list,
        description=(
            "What this run could not trust or reuse from the previous release; those inputs "
            "were processed again from the source."
        ),
    )
    changes: ReleaseChanges | None = Field(
        default=None,
        description="Documents added, removed, changed and unchanged since the previous release.",
    )
    histograms: dict[str, list[int]] = Field(
        default_factory=dict,
        description=(
            "Fixed-bin histograms of the published documents' quality signals and lengths "
            "(bins in README: Quality signals), for the next release's report to compare."
        ),
    )


class ReleaseChanges(BaseModel):
    """This release against the previous one, by document id and text hash."""

    model_config = ConfigDict(extra="forbid")

    previous: str | None = Field(description="The previous release's id; null for the first.")
    added: int = Field(ge=0, description="Ids published now and not then.")
    removed: int = Field(ge=0, description="Ids published then and not now.")
    changed: int = Field(ge=0, description="Ids published in both, with another text.")
    unchanged: int = Field(ge=0, description="Ids published in both, with the same text.")


class SignalBound(BaseModel):
    """The accepted range of one quality signal in a thresholds file."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None


class QualityThresholds(BaseModel):
    """A quality thresholds file (TOML): one ``[signal]`` table per signal with min and/or max."""

    model_config = ConfigDict(extra="forbid", title="QualityThresholds")

    word_count: SignalBound | None = None
    mean_word_length: SignalBound | None = None
    symbol_word_ratio: SignalBound | None = None
    alpha_words: SignalBound | None = None
    punct_lines: SignalBound | None = None
    short_lines: SignalBound | None = None
    bullet_lines: SignalBound | None = None
    ellipsis_lines: SignalBound | None = None
    dup_lines: SignalBound | None = None
    dup_paragraphs: SignalBound | None = None
    dup_line_chars: SignalBound | None = None
    dup_paragraph_chars: SignalBound | None = None
    top_2gram_chars: SignalBound | None = None
    top_3gram_chars: SignalBound | None = None
    top_4gram_chars: SignalBound | None = None
    newline_word_ratio: SignalBound | None = None
    c4_sentences: SignalBound | None = None
    curly_bracket: SignalBound | None = None
    lorem_ipsum: SignalBound | None = None


class RuleModel(BaseModel):
    """One boilerplate rule in a TOML rule file."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = Field(
        description="Stable name, recorded with every line the rule removes."
    )
    description: str = ""
    phrases: list[NonEmptyStr] = Field(
        default_factory=list,
        description="Whole-line phrases, compared case-insensitively without surrounding punctuation.",
    )
    pattern: str | None = Field(
        default=None, description="Regular expression that must match the whole stripped line."
    )
    position: Literal["any", "edge", "end"] = Field(
        default="any",
        description=(
            "'edge': only in the leading/trailing run of boilerplate lines. 'end': anywhere, "
            "and the line marks the end of the article (a related-articles or comments "
            "heading): every line after it goes too when 90 % of the main content's prose "
            "comes before it."
        ),
    )
    max_chars: int = Field(
        default=80, ge=1, le=2_000, description="Longer lines are never removed by this rule."
    )


class RuleFile(BaseModel):
    """A boilerplate rule file (TOML): ``[[rules]]`` tables."""

    model_config = ConfigDict(extra="forbid", title="BoilerplateRules")

    rules: list[RuleModel]


PUBLISHED_MODELS: dict[str, type[BaseModel]] = {
    "document_metadata": DocumentMetadata,
    "run_parameters": RunParameters,
    "manifest": Manifest,
    "boilerplate_rules": RuleFile,
    "quality_thresholds": QualityThresholds,
}


def parameter_default(name: str) -> Any:
    """The default of one run parameter: the stages' own settings default to these, so a
    stage called without settings behaves as a default run does."""
    return RunParameters.model_fields[name].get_default(call_default_factory=True)
