"""System endpoints and the generic metadata collections (``/api/<collection>``).

Lists support ``fields``, repeatable AND-ed ``filter``, ``order``, ``paging``/``page``/``pageSize``
and answer ``{"pager": {...}, "<collection>": [...]}`` with the default fields ``id,displayName``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from dhis2_lmis.testing._fields import Ref, apply_fields, match_filter, parse_fields
from dhis2_lmis.testing._host import Host
from dhis2_lmis.testing._server import Request, Response, json_response, text_response, web_message
from dhis2_lmis.testing._world import (
    DEFAULT_CATEGORY_OPTION,
    User,
    World,
    new_uid,
)

__all__ = [
    "COLLECTIONS",
    "fmt_time",
    "handle_list",
    "handle_me",
    "handle_object",
    "handle_ping",
    "handle_system_id",
    "handle_system_info",
    "handle_system_ping",
    "render",
    "resolver",
]

_EPOCH = dt.datetime(2020, 1, 1, 8, 0)


def fmt_time(value: dt.datetime | None) -> str | None:
    """DHIS2's ``yyyy-MM-dd'T'HH:mm:ss.SSS`` without offset."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds")


def _base(uid: str, code: str | None, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": uid}
    if code is not None:
        out["code"] = code
    stamp = fmt_time(_EPOCH)
    out.update(
        name=name,
        displayName=name,
        shortName=name[:50],
        displayShortName=name[:50],
        created=stamp,
        lastUpdated=stamp,
    )
    return out


def _org_unit(w: World, uid: str) -> dict[str, Any] | None:
    ou = w.org_units.get(uid)
    if ou is None:
        return None
    out = _base(ou.uid, ou.code, ou.name)
    out.update(
        path=ou.path,
        level=ou.level,
        openingDate="2000-01-01T00:00:00.000",
        children=[Ref("organisationUnits", c) for c in ou.children],
        dataSets=[Ref("dataSets", d.uid) for d in w.data_sets.values() if uid in d.org_units],
        programs=[Ref("programs", p.uid) for p in w.programs.values() if uid in p.org_units],
    )
    if ou.parent is not None:
        out["parent"] = Ref("organisationUnits", ou.parent)
    return out


def _data_element(w: World, uid: str) -> dict[str, Any] | None:
    de = w.data_elements.get(uid)
    if de is None:
        return None
    out = _base(de.uid, de.code, de.name)
    out.update(
        valueType=de.value_type,
        domainType=de.domain_type,
        aggregationType="SUM" if de.value_type in _NUMERIC else "NONE",
        zeroIsSignificant=de.zero_is_significant,
        categoryCombo=Ref("categoryCombos", de.category_combo),
        dataSetElements=[
            {"dataSet": Ref("dataSets", ds.uid), "dataElement": Ref("dataElements", uid)}
            for ds in w.data_sets.values()
            if uid in ds.data_elements
        ],
    )
    if de.option_set is not None:
        out["optionSet"] = Ref("optionSets", de.option_set)
        out["optionSetValue"] = True
    return out


def _option_set(w: World, uid: str) -> dict[str, Any] | None:
    os_ = w.option_sets.get(uid)
    if os_ is None:
        return None
    out = _base(os_.uid, os_.code, os_.name)
    out.update(
        valueType=os_.value_type,
        options=[
            {"id": f"{uid[:6]}{n:05d}", "code": code, "name": code, "sortOrder": n + 1}
            for n, code in enumerate(os_.options)
        ],
    )
    return out


def _category_combo(w: World, uid: str) -> dict[str, Any] | None:
    cc = w.category_combos.get(uid)
    if cc is None:
        return None
    out = _base(cc.uid, cc.code, cc.name)
    out.update(
        dataDimensionType="DISAGGREGATION",
        isDefault=cc.code == "default",
        categoryOptionCombos=[Ref("categoryOptionCombos", c) for c in cc.option_combos],
    )
    return out


def _coc(w: World, uid: str) -> dict[str, Any] | None:
    coc = w.category_option_combos.get(uid)
    if coc is None:
        return None
    out = _base(coc.uid, coc.code, coc.name)
    out.update(
        ignoreApproval=False,
        categoryCombo=Ref("categoryCombos", coc.category_combo),
        categoryOptions=[Ref("categoryOptions", DEFAULT_CATEGORY_OPTION)],
    )
    return out


def _category_option(w: World, uid: str) -> dict[str, Any] | None:
    if uid != DEFAULT_CATEGORY_OPTION:
        return None
    return _base(uid, "default", "default")


def _data_set(w: World, uid: str) -> dict[str, Any] | None:
    ds = w.data_sets.get(uid)
    if ds is None:
        return None
    out = _base(ds.uid, ds.code, ds.name)
    out.update(
        periodType=ds.period_type,
        categoryCombo=Ref("categoryCombos", ds.category_combo),
        dataSetElements=[
            {"dataSet": Ref("dataSets", uid), "dataElement": Ref("dataElements", de)}
            for de in ds.data_elements
        ],
        organisationUnits=[Ref("organisationUnits", o) for o in ds.org_units],
        expiryDays=ds.expiry_days,
        openFuturePeriods=ds.open_future_periods,
        dataInputPeriods=[
            {
                "period": {"id": p.period},
                "openingDate": fmt_time(p.opening),
                "closingDate": fmt_time(p.closing),
            }
            for p in ds.input_periods
        ],
    )
    return out


def _program(w: World, uid: str) -> dict[str, Any] | None:
    p = w.programs.get(uid)
    if p is None:
        return None
    out = _base(p.uid, p.code, p.name)
    out.update(
        programType=p.program_type,
        categoryCombo=Ref("categoryCombos", p.category_combo),
        programStages=[Ref("programStages", s) for s in p.stages],
        programTrackedEntityAttributes=[
            {
                "id": f"{uid[:5]}{tea[:6]}",
                "trackedEntityAttribute": Ref("trackedEntityAttributes", tea),
                "mandatory": False,
                "searchable": True,
            }
            for tea in p.attributes
        ],
        organisationUnits=[Ref("organisationUnits", o) for o in p.org_units],
    )
    if p.program_type == "WITH_REGISTRATION":
        out["trackedEntityType"] = {"id": "nEenWmSyUEp"}
    return out


def _program_stage(w: World, uid: str) -> dict[str, Any] | None:
    st = w.program_stages.get(uid)
    if st is None:
        return None
    out = _base(st.uid, st.code, st.name)
    out.update(
        program=Ref("programs", st.program),
        repeatable=True,
        programStageDataElements=[
            {
                "id": f"{uid[:5]}{de[:6]}",
                "compulsory": False,
                "dataElement": Ref("dataElements", de),
            }
            for de in st.data_elements
        ],
    )
    return out


def _tea(w: World, uid: str) -> dict[str, Any] | None:
    tea = w.attributes.get(uid)
    if tea is None:
        return None
    out = _base(tea.uid, tea.code, tea.name)
    out.update(valueType=tea.value_type, unique=False, aggregationType="NONE")
    return out


_NUMERIC = {
    "INTEGER",
    "INTEGER_POSITIVE",
    "INTEGER_NEGATIVE",
    "INTEGER_ZERO_OR_POSITIVE",
    "NUMBER",
    "PERCENTAGE",
    "UNIT_INTERVAL",
}

COLLECTIONS: dict[str, tuple[str, Callable[[World, str], dict[str, Any] | None]]] = {
    "organisationUnits": ("org_units", _org_unit),
    "dataElements": ("data_elements", _data_element),
    "categoryCombos": ("category_combos", _category_combo),
    "categoryOptionCombos": ("category_option_combos", _coc),
    "categoryOptions": ("", _category_option),
    "dataSets": ("data_sets", _data_set),
    "optionSets": ("option_sets", _option_set),
    "programs": ("programs", _program),
    "programStages": ("program_stages", _program_stage),
    "trackedEntityAttributes": ("attributes", _tea),
}


def render(world: World, collection: str, uid: str) -> dict[str, Any] | None:
    """The full object (with ``Ref`` markers) or None."""
    return COLLECTIONS[collection][1](world, uid)


def resolver(world: World) -> Callable[[Ref], dict[str, Any] | None]:
    """A ``Ref`` resolver bound to ``world``."""

    def resolve(ref: Ref) -> dict[str, Any] | None:
        if ref.collection not in COLLECTIONS:
            return None
        return render(world, ref.collection, ref.uid)

    return resolve


def _uids(world: World, collection: str) -> list[str]:
    attr = COLLECTIONS[collection][0]
    if not attr:
        return [DEFAULT_CATEGORY_OPTION]
    table: dict[str, object] = getattr(world, attr)
    return list(table)


def _order_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (1, "")
    if isinstance(value, (int, float)):
        return (0, value)
    return (0, str(value))


def handle_list(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/<collection>``."""
    collection = m.group("collection")
    if collection not in COLLECTIONS:
        fake.unanswered.append(f"GET {req.path}")
        return web_message(404, f"No route for GET {req.path}")
    world = fake.world
    resolve = resolver(world)
    with world.lock:
        objects = [o for uid in _uids(world, collection) if (o := render(world, collection, uid))]
        for expr in req.params("filter"):
            objects = [o for o in objects if match_filter(expr, o, resolve)]
        for order in reversed(",".join(req.params("order")).split(",")):
            prop, _, direction = order.strip().partition(":")
            if prop:
                objects.sort(
                    key=lambda o, p=prop: _order_key(o.get(p)),  # type: ignore[misc]  # bound default
                    reverse=direction.lower() in ("desc", "idesc"),
                )
        spec = parse_fields(",".join(req.params("fields")) or "id,displayName")
        paging = req.param("paging") is None or req.flag("paging", True)
        total = len(objects)
        body: dict[str, Any] = {}
        if paging:
            page = max(1, int(req.param("page") or 1))
            size = max(1, int(req.param("pageSize") or 50))
            page_count = max(1, -(-total // size))
            pager: dict[str, Any] = {
                "page": page,
                "total": total,
                "pageSize": size,
                "pageCount": page_count,
            }
            if page < page_count:
                pager["nextPage"] = req.url_with(page=str(page + 1))
            if page > 1:
                pager["prevPage"] = req.url_with(page=str(page - 1))
            body["pager"] = pager
            objects = objects[(page - 1) * size : page * size]
        body[collection] = [apply_fields(spec, o, resolve) for o in objects]
    return json_response(200, body)


def handle_object(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/<collection>/<uid>``."""
    collection, uid = m.group("collection"), m.group("uid")
    if collection not in COLLECTIONS:
        fake.unanswered.append(f"GET {req.path}")
        return web_message(404, f"No route for GET {req.path}")
    world = fake.world
    with world.lock:
        obj = render(world, collection, uid)
        if obj is None:
            kind = collection[0].upper() + collection[1:-1]
            return web_message(404, f"{kind} with id {uid} could not be found.")
        spec = parse_fields(",".join(req.params("fields")) or "*")
        return json_response(200, apply_fields(spec, obj, resolver(world)))


def handle_ping(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/ping``: no auth, empty 200 (2.40+, some earlier patches)."""
    return Response(200, b"", "text/plain;charset=UTF-8")


def handle_system_ping(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/system/ping``: the bare string ``pong``."""
    return text_response(200, "pong")


def handle_system_info(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/system/info`` in the SystemInfo shape."""
    info: dict[str, Any] = {
        "contextPath": req.base_url,
        "userAgent": req.header("user-agent") or "",
        "calendar": "iso8601",
        "dateFormat": "yyyy-mm-dd",
        "serverDate": fmt_time(fake.now),
        "serverTimeZoneId": fake.time_zone,
        "serverTimeZoneDisplayName": fake.time_zone,
        "lastAnalyticsTableSuccess": fmt_time(_EPOCH),
        "version": fake.version,
        "revision": "fake0001",
        "buildTime": fmt_time(_EPOCH),
        "jasperReportsVersion": "6.20.1",
        "environmentVariable": "DHIS2_HOME",
        "readOnlyMode": "off",
        "systemId": fake.system_id,
        "systemName": "DHIS 2 (FakeDhis2)",
        "instanceBaseUrl": req.base_url,
        "isMetadataVersionEnabled": False,
        "emailConfigured": False,
        "redisEnabled": False,
    }
    fields = ",".join(req.params("fields"))
    if fields:
        info = apply_fields(parse_fields(fields), info)
    return json_response(200, info)


def handle_system_id(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/system/id?limit=N``: fresh UIDs."""
    limit = min(10000, max(1, int(req.param("limit") or 1)))
    return json_response(200, {"codes": [new_uid() for _ in range(limit)]})


def handle_me(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``GET /api/me``: ``username`` top-level from 2.38, ``userCredentials`` up to 2.41."""
    assert user is not None
    minor = fake.server_version.minor
    name = f"{user.first_name} {user.surname}"
    me: dict[str, Any] = {"id": user.uid}
    if minor >= 38:
        me["username"] = user.username
    me.update(
        name=name,
        displayName=name,
        firstName=user.first_name,
        surname=user.surname,
        organisationUnits=[{"id": ou} for ou in user.org_units],
        dataViewOrganisationUnits=[{"id": ou} for ou in user.org_units],
        teiSearchOrganisationUnits=[],
        authorities=list(user.authorities),
        settings={"keyUiLocale": "en"},
    )
    if minor <= 41:
        me["userCredentials"] = {
            "id": user.uid,
            "username": user.username,
            "userRoles": [{"id": "yrB6vc5Ip3r"}],
        }
    spec = parse_fields(",".join(req.params("fields")) or "*")
    return json_response(200, apply_fields(spec, me))
