"""The reads write a Thing's JSON from its row with orjson (`service.document_json`): the bytes
must be the ThingOut model's own, whatever text and times the Thing holds, because ETags
compared by PATCH's If-Match are taken from them."""

from __future__ import annotations

from datetime import UTC
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from simplane.core.http import json_bytes
from simplane.things import repository, service
from simplane.things.schemas import TAG_PATTERN

# Any text a JSON request body can carry into a column (a lone surrogate cannot be stored).
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_times = st.datetimes(timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(name=_text, imei=st.none() | _text, operator=st.none() | _text,
       since=st.none() | _times, created=_times, updated=_times, activated=st.none() | _times,
       flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
       tags=st.lists(st.from_regex(TAG_PATTERN, fullmatch=True), max_size=4, unique=True))
def test_a_rows_json_is_the_models_json(name, imei, operator, since, created, updated,  # type: ignore[no-untyped-def]
                                        activated, flags, tags):
    data, sms, imei_lock, ip_locked = flags
    fields = {
        "id": "thg_038GRZRMMWBD1ZHCA2ZGMEH6P2B3P", "iccid": "8931000000000000001",
        "imsi": "204080000000001", "name": name, "state": "ACTIVE",
        "things_group_id": "grp_038GRZRMMWBD1ZHCA2ZGMEH6P2B3P", "service_data": data,
        "service_sms": sms, "imei": imei, "imei_lock": imei_lock, "ip_address": "100.64.0.7",
        "ip_locked": ip_locked, "connection_status": "ATTACHED", "connection_since": since,
        "connection_rat": "LTE", "connection_country": "NL", "connection_operator": operator,
        "connection_session_id": "ses_1", "created_at": created, "updated_at": updated,
        "activated_at": activated}
    # The tags as the reads' statements give them: joined by ",", in any order, NULL for none.
    row = (*(fields[column.name] for column in repository.THING_COLUMNS), ",".join(tags) or None)
    model = service.view(SimpleNamespace(**fields), list(tags))  # type: ignore[arg-type]
    read_tags = repository.tags_of_row(row)
    assert sorted(read_tags) == sorted(tags)
    assert service.document_json(service.thing_document(row, read_tags)) == json_bytes(model)
    page = {"items": [service.thing_document(row, read_tags)], "next_cursor": None}
    assert service.document_json(page) == (
        b'{"items":[' + json_bytes(model) + b'],"next_cursor":null}')
