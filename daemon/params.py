"""Symbl Async Audio parameters: one set of rules for config, sidecars, client and emulator.

The rules follow ``shared/symbl-api.md``. Validation returns every problem at once as
``ParamProblem(loc, message)`` so callers can point at a file, a line and a dotted key.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

SUPPORTED_LANGUAGES: tuple[str, ...] = (
    "en-US", "en-GB", "en-AU", "en-IE", "en-IN", "en-ZA", "ru-RU", "fr-CA", "fr-FR", "de-DE",
    "it-IT", "nl-NL", "ja-JP", "es-US", "es-ES", "ar-SA", "hi-IN", "pt-BR", "pt-PT", "fa-IR",
)  # fmt: skip
DIARIZATION_LANGUAGE_PREFIXES = ("en-", "es-")
BOOLEAN_PARAMS: tuple[str, ...] = (
    "detectEntities",
    "detectPhrases",
    "enableSeparateRecognitionPerChannel",
    "enableSpeakerDiarization",
    "enableAllTrackers",
    "enableSummary",
)
# Arrays of plain strings travel in a query as repeated keys; everything structured as JSON text.
REPEATED_QUERY_PARAMS: tuple[str, ...] = ("customVocabulary",)
JSON_QUERY_PARAMS: tuple[str, ...] = (
    "entities",
    "channelMetadata",
    "trackers",
    "features",
    "metadata",
)


def _confidence_in_range(value: float) -> float:
    if not 0.5 <= value <= 1.0:
        raise PydanticCustomError("range", "must be between 0.5 and 1.0")
    return value


def _positive(value: int) -> int:
    if value < 1:
        raise PydanticCustomError("positive", "must be a positive integer")
    return value


def _language_supported(value: str) -> str:
    if value not in SUPPORTED_LANGUAGES:
        hint = _did_you_mean(value, SUPPORTED_LANGUAGES)
        raise PydanticCustomError(
            "language", "unsupported language {value}{hint}", {"value": repr(value), "hint": hint}
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]
PositiveInt = Annotated[int, AfterValidator(_positive)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Entity(_Strict):
    customType: NonBlank
    text: NonBlank


class Speaker(_Strict):
    name: str | None = None
    email: str | None = None


class ChannelMetadata(_Strict):
    channel: PositiveInt
    speaker: Speaker


class Tracker(_Strict):
    name: NonBlank
    vocabulary: Annotated[list[NonBlank], Field(min_length=1)]


class SymblParams(_Strict):
    """Every parameter the Async Audio endpoints document, with the documented rules."""

    name: NonBlank | None = None
    webhookUrl: NonBlank | None = None
    customVocabulary: list[NonBlank] | None = None
    confidenceThreshold: Annotated[float, AfterValidator(_confidence_in_range)] | None = None
    detectEntities: bool | None = None
    detectPhrases: bool | None = None
    enableSeparateRecognitionPerChannel: bool | None = None
    enableSpeakerDiarization: bool | None = None
    enableAllTrackers: bool | None = None
    enableSummary: bool | None = None
    entities: list[Entity] | None = None
    channelMetadata: list[ChannelMetadata] | None = None
    languageCode: Annotated[str, AfterValidator(_language_supported)] | None = None
    mode: Literal["phone", "default"] | None = None
    trackers: list[Tracker] | None = None
    diarizationSpeakerCount: PositiveInt | None = None
    features: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _combinations(self) -> SymblParams:
        if self.channelMetadata is not None and not self.enableSeparateRecognitionPerChannel:
            raise PydanticCustomError(
                "combination",
                "channelMetadata: needs enableSeparateRecognitionPerChannel: true",
            )
        language = self.languageCode or "en-US"
        if self.enableSpeakerDiarization and not language.startswith(DIARIZATION_LANGUAGE_PREFIXES):
            raise PydanticCustomError(
                "combination",
                "enableSpeakerDiarization: diarization supports English and Spanish only, "
                "not {language}",
                {"language": language},
            )
        return self


PARAM_NAMES: tuple[str, ...] = tuple(SymblParams.model_fields)


@dataclass(frozen=True)
class ParamProblem:
    """One thing wrong with a parameter set: where (a path of keys and indices) and what."""

    loc: tuple[str | int, ...]
    message: str


def dotted(loc: Sequence[str | int]) -> str:
    """``("trackers", 0, "name")`` -> ``trackers[0].name``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_key_message(key: str, choices: Iterable[str]) -> str:
    """The message for a key nobody knows, with the nearest known key when there is one."""
    return f"unknown key{_did_you_mean(key, choices)}"


_TYPE_MESSAGES: dict[str, str] = {
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "missing": "is required",
    "too_short": "must not be empty",
}


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class whose fields apply at ``loc`` (for did-you-mean suggestions)."""
    model: type[BaseModel] = SymblParams
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        inner = _first_model(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _translate(error: Mapping[str, Any]) -> ParamProblem:
    loc = tuple(part for part in error["loc"] if isinstance(part, (str, int)))
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        choices = tuple(model.model_fields) if model else ()
        return ParamProblem(loc, unknown_key_message(str(loc[-1]), choices))
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return ParamProblem(loc, f"must be one of {expected}")
    if kind == "int_type" and isinstance(error.get("input"), float):
        return ParamProblem(loc, "must be a whole number")
    message = _TYPE_MESSAGES.get(kind, error["msg"])
    if not loc and ": " in message:
        # A combination rule names its own key; lift it into the location.
        key, _, message = message.partition(": ")
        loc = (key,)
    return ParamProblem(loc, message)


def validate_params(raw: Any) -> tuple[dict[str, Any], list[ParamProblem]]:
    """Check a parameter mapping; return it (JSON-native, unset keys dropped) and every problem."""
    if not isinstance(raw, Mapping):
        return {}, [ParamProblem((), "must be a mapping of Symbl parameters")]
    try:
        model = SymblParams.model_validate(dict(raw))
    except ValidationError as exc:
        return {}, [_translate(error) for error in exc.errors()]
    return model.model_dump(mode="json", exclude_none=True), []


def merge_params(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers override earlier ones key by key (profile chain, then sidecar overrides)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return merged


# ---------------------------------------------------------------- query string encoding


def _query_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_query(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Encode validated parameters for a file call's query string, as the API documents."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if key in REPEATED_QUERY_PARAMS and isinstance(value, list):
            pairs.extend((key, _query_scalar(item)) for item in value)
        elif isinstance(value, (dict, list)):
            pairs.append((key, json.dumps(value, separators=(",", ":"), ensure_ascii=False)))
        else:
            pairs.append((key, _query_scalar(value)))
    return pairs


def _decode_scalar(key: str, text: str) -> Any:
    field = SymblParams.model_fields.get(key)
    if key in BOOLEAN_PARAMS:
        lowered = text.strip().lower()
        return {"true": True, "false": False}.get(lowered, text)
    if key == "confidenceThreshold":
        try:
            return float(text)
        except ValueError:
            return text
    if key == "diarizationSpeakerCount":
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() else number
    if field is not None and key in JSON_QUERY_PARAMS:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def decode_query(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn a received query string back into typed parameters (the emulator's side).

    Lenient where the official clients are: ``True``/``False`` booleans, a float speaker count
    ``2.0``, and a list of strings sent either as repeated keys or as one JSON array.
    """
    collected: dict[str, list[str]] = {}
    for key, text in pairs:
        collected.setdefault(key, []).append(text)
    decoded: dict[str, Any] = {}
    for key, texts in collected.items():
        if key in REPEATED_QUERY_PARAMS:
            decoded[key] = _decode_string_list(texts)
        else:
            decoded[key] = _decode_scalar(key, texts[-1])
    return decoded


def _decode_string_list(texts: list[str]) -> list[Any]:
    if len(texts) == 1 and texts[0].startswith("["):
        try:
            loaded = json.loads(texts[0])
        except ValueError:
            return texts
        if isinstance(loaded, list):
            return loaded
    return texts
