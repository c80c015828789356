"""The stages composed: one input's bytes in, one published or rejected row out. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flows.contracts import DocumentRow, Outcome, RejectedRow, SourceDocument
from flows.stages.boilerplate import Cleaned, RemovedLine, RuleSet, clean
from flows.stages.encoding import Decoded, EncodingSettings, decode
from flows.stages.language import (
    LanguageResult,
    LanguageSettings,
    check_language,
    detect_language,
)
from flows.stages.metadata import (
    ValidMetadata,
    derive_title,
    published_utc,
    sha256_hex,
    validate_metadata,
)
from flows.stages.quality import QualitySignals, Thresholds, check_quality, quality_signals
from flows.stages.types import Reason, Rejection, Stage


@dataclass(frozen=True, slots=True)
class StageConfig:
    """What the pure stages need from the run parameters; small and picklable."""

    encoding: EncodingSettings
    language: LanguageSettings
    rules: RuleSet
    reject_language_mismatch: bool
    allowed_languages: frozenset[str]
    unknown_metadata: str
    pipeline_version: str
    # quality_filters' thresholds; None: signals are recorded, nothing is filtered
    quality: Thresholds | None = None


def reject(
    doc: SourceDocument,
    rejection: Rejection,
    pipeline_version: str,
    data: bytes | None = None,
    digest: str | None = None,
) -> RejectedRow:
    return RejectedRow(
        source_path=doc.source_path,
        stage=rejection.stage.value,
        reason=rejection.reason.value,
        # An exception message may quote input holding lone surrogates; Parquet needs UTF-8.
        detail=rejection.detail.encode("utf-8", "backslashreplace").decode("utf-8"),
        source_sha256=(digest or sha256_hex(data)) if data is not None else None,
        source_bytes=len(data) if data is not None else doc.size,
        pipeline_version=pipeline_version,
    )


def process_document(
    doc: SourceDocument, data: bytes, cfg: StageConfig, digest: str | None = None
) -> DocumentRow | RejectedRow:
    """Run encoding -> boilerplate -> language -> metadata on one input. ``digest`` is the
    SHA-256 of ``data`` when the caller has it already (inputs are hashed once per run)."""
    digest = digest or sha256_hex(data)
    decoded = decode(data, cfg.encoding)
    if isinstance(decoded, Rejection):
        return reject(doc, decoded, cfg.pipeline_version, data, digest)

    cleaned = clean(decoded.text, cfg.rules)
    if isinstance(cleaned, Rejection):
        return reject(doc, cleaned, cfg.pipeline_version, data, digest)

    # On the cleaned text: an English cookie notice or menu must not lower a German
    # article's main-language share (language_share / language_mixed).
    language = detect_language(cleaned.text, cfg.language)

    meta: ValidMetadata | None = None
    if doc.metadata is not None:
        checked = validate_metadata(doc.metadata, doc.metadata_line or 0, cfg.unknown_metadata)
        if isinstance(checked, Rejection):
            return reject(doc, checked, cfg.pipeline_version, data, digest)
        meta = checked

    declared = meta.model.language if meta else None
    mismatch, refused = check_language(
        language, declared, cfg.allowed_languages, cfg.reject_language_mismatch
    )
    if refused is not None:
        return reject(doc, refused, cfg.pipeline_version, data, digest)
    signals = quality_signals(cleaned.text)
    failed = check_quality(signals, cfg.quality)
    if failed is not None:
        return reject(doc, failed, cfg.pipeline_version, data, digest)
    return _row(doc, data, digest, decoded, cleaned, language, mismatch, meta, signals, cfg)


def _row(
    doc: SourceDocument,
    data: bytes,
    digest: str,
    decoded: Decoded,
    cleaned: Cleaned,
    language: LanguageResult,
    mismatch: bool,
    meta: ValidMetadata | None,
    signals: QualitySignals,
    cfg: StageConfig,
) -> DocumentRow:
    model = meta.model if meta else None
    return DocumentRow(
        id=doc.doc_id,
        text=cleaned.text,
        # Supplied title, else the headline cut with the page furniture, else a title-like
        # first line of the cleaned text.
        title=(model.title if model and model.title else None)
        or cleaned.headline
        or derive_title(cleaned.text),
        language=language.language,
        language_confidence=language.confidence,
        language_declared=model.language if model else None,
        language_mismatch=mismatch,
        language_share=language.main_share,
        language_mixed=language.mixed,
        source_path=doc.source_path,
        source_bytes=len(data),
        source_encoding=decoded.encoding,
        encoding_confidence=decoded.confidence,
        encoding_method=decoded.method,
        encoding_low_confidence=decoded.low_confidence,
        text_repairs=decoded.repairs,
        source_sha256=digest,
        text_sha256=sha256_hex(cleaned.text.encode("utf-8")),
        text_chars=len(cleaned.text),
        removed=cleaned.removed,
        quality=signals,
        url=str(model.url) if model and model.url else None,
        published=published_utc(model.published) if model else None,
        authors=tuple(model.authors) if model else (),
        license=model.license if model else None,
        source=model.source if model else None,
        metadata_extra=meta.extra_json if meta else None,
        pipeline_version=cfg.pipeline_version,
    )


def process_many(
    items: Sequence[tuple[SourceDocument, bytes | Rejection]],
    cfg: StageConfig,
    digests: Mapping[str, str] | None = None,
) -> Outcome:
    """Process a shard; an input whose bytes could not be read arrives as a Rejection.
    ``digests`` maps source paths to the SHA-256 of their bytes where already computed."""
    outcome = Outcome()
    known = digests or {}
    for doc, payload in items:
        if isinstance(payload, Rejection):
            outcome.rejected.append(reject(doc, payload, cfg.pipeline_version))
            continue
        digest = known.get(doc.source_path) or sha256_hex(payload)
        try:
            row = process_document(doc, payload, cfg, digest)
        except Exception as error:  # noqa: BLE001 - a bug must cost one document, not a shard
            failure = Rejection(
                Stage.PIPELINE, Reason.INTERNAL_ERROR, f"{type(error).__name__}: {error}"
            )
            row = reject(doc, failure, cfg.pipeline_version, payload, digest)
        if isinstance(row, RejectedRow):
            outcome.rejected.append(row)
            continue
        unencodable = _unencodable_field(row)
        if unencodable is not None:
            # Writing it would fail the whole shard's Parquet file: cost one document instead.
            failure = Rejection(
                Stage.PIPELINE,
                Reason.INTERNAL_ERROR,
                f"column {unencodable} is not valid Unicode (unpaired surrogate)",
            )
            outcome.rejected.append(reject(doc, failure, cfg.pipeline_version, payload, digest))
        else:
            outcome.documents.append(row)
    return outcome


def _unencodable_field(row: DocumentRow) -> str | None:
    """The first column holding a string UTF-8 cannot encode (a lone surrogate), if any."""
    if _strings_encodable(row):  # nearly every row: one encode, no walk over the fields
        return None
    for name in row.__dataclass_fields__:
        if not _encodable(getattr(row, name)):
            return name
    return None


def _strings_encodable(row: DocumentRow) -> bool:
    """Whether every string of the row encodes (its text, titles, removed lines, ...),
    checked as one string: UTF-8 refuses a surrogate whatever is around it."""
    strings: list[str] = []
    for value in map(row.__getattribute__, row.__dataclass_fields__):
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, str):
                    strings.append(item)
                elif isinstance(item, RemovedLine):
                    strings += (item.rule, item.text)
                elif isinstance(item, tuple):
                    return False  # nested: left to the walk
    return _encodable("".join(strings))


def _encodable(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, tuple):
        return all(_encodable(item) for item in value)
    if isinstance(value, RemovedLine):
        return _encodable(value.rule) and _encodable(value.text)
    return True


__all__ = ["StageConfig", "process_document", "process_many", "reject"]
