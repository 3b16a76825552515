from __future__ import annotations

from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, FormParser, JSONParser, MultiPartParser

from core.api.casing import to_snake, underscoreize
from core.api.input_guards import check_form, check_json, too_deep

if TYPE_CHECKING:
    from django.http.request import _ImmutableQueryDict


def _underscoreize_querydict(data: MultiValueDict[str, Any]) -> _ImmutableQueryDict:
    converted = QueryDict(mutable=True)
    for key, values in data.lists():
        converted.setlist(to_snake(key), values)
    converted._mutable = False
    return cast("_ImmutableQueryDict", converted)  # the stubs' name for a QueryDict made read-only


class CamelCaseJSONParser(JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except ParseError as exc:
            raise ParseError("Malformed JSON: the request body could not be parsed.") from exc
        except RecursionError:
            raise too_deep() from None
        check_json(data)
        return underscoreize(data)


class CamelCaseFormParser(FormParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> _ImmutableQueryDict:
        data = super().parse(stream, media_type, parser_context)
        check_form(data.lists())
        return _underscoreize_querydict(data)


class CamelCaseMultiPartParser(MultiPartParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> DataAndFiles[_ImmutableQueryDict, MultiValueDict[Any, Any]]:
        parsed = super().parse(stream, media_type, parser_context)
        check_form(parsed.data.lists())
        check_form(parsed.files.lists())
        return DataAndFiles(_underscoreize_querydict(parsed.data), _underscoreize_querydict(parsed.files))
