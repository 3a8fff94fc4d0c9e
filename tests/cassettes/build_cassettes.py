"""Regenerate the vcrpy cassettes under session/, events/ and datavaluesets/.

Run from the project root: ``.venv/bin/python tests/cassettes/build_cassettes.py``
(``--fixtures DIR`` points at another copy of ``shared/fixtures/dhis2``).

Only this script reads ``../shared/fixtures/dhis2``; the tests read the cassettes it writes.
Every source file is checked against the git blob id in ``MANIFEST.tsv`` before use, and every
written cassette is read back to check that each response body is byte for byte the upstream
body. Response bodies are never edited; where upstream did not record the request (raw JSON
bodies, Android SDK mocks), the request URI is reconstructed and SOURCE.md says so.

Upstream formats converted here:

* ``responses`` recorder YAML (BLSQ/openhexa-toolbox): ``responses: [{response: {url, method,
  status, body, content_type}}]``; the recorder stored ``text/plain`` for JSON bodies, so the
  cassettes say ``application/json``. ``/api/system/ping`` answers are left out (the library
  never pings).
* the Cypress network shim (dhis2/aggregate-data-entry-app): a JSON array of ``{path, method,
  statusCode, responseHeaders, responseBody}``; a non-deterministic entry holds a list of
  bodies and the first one is used.
* raw JSON bodies (BLSQ/dhis2, BLSQ/iaso, dhis2/maintenance-app-beta, dhis2/dhis2-android-sdk):
  the whole file is the body.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_FIXTURES = HERE.parents[2] / "shared" / "fixtures" / "dhis2"
TEST_HOST = "http://dhis2.test"

REPOS: dict[str, tuple[str, str, str]] = {
    # folder: (GitHub repository, licence, licence file in the folder)
    "BLSQ-openhexa-toolbox": ("BLSQ/openhexa-toolbox", "MIT (c) 2023 Bluesquare", "LICENSE"),
    "BLSQ-dhis2": ("BLSQ/dhis2", "MIT (c) 2016 Martin Van Aken", "LICENSE.txt"),
    "BLSQ-iaso": ("BLSQ/iaso", "MIT (c) 2020 Bluesquare", "LICENSE"),
    "dhis2-aggregate-data-entry-app": (
        "dhis2/aggregate-data-entry-app",
        "BSD-3-Clause (c) 2022 DHIS2",
        "LICENSE.md",
    ),
    "dhis2-dhis2-android-sdk": (
        "dhis2/dhis2-android-sdk",
        "BSD-3-Clause (c) University of Oslo",
        "LICENSE",
    ),
    "dhis2-maintenance-app-beta": (
        "dhis2/maintenance-app-beta",
        "BSD-3-Clause (declared in package.json; the repository has no LICENSE file)",
        "LICENSE-from-package.json.txt",
    ),
}

HEXA = "tests/dhis2/responses"
SHIM = "cypress/fixtures/network"
ANDROID = "core/src/sharedTest/resources"


@attrs.frozen
class Source:
    """One upstream file used by a cassette, as listed in SOURCE.md."""

    folder: str
    path: str
    version: str
    provenance: str
    note: str = ""


@attrs.frozen
class Interaction:
    """One request and its recorded answer."""

    uri: str
    body: bytes
    status: int = 200
    content_type: str = "application/json"
    method: str = "GET"


@attrs.frozen
class Cassette:
    """One cassette file: what it replays and where every body came from."""

    directory: str
    name: str
    interactions: tuple[Interaction, ...]
    sources: tuple[Source, ...]
    request_note: str


class Fixtures:
    """Read access to the shared fixtures, verified against MANIFEST.tsv."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest: dict[tuple[str, str], tuple[str, str]] = {}
        lines = (root / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
        for line in lines[1:]:
            folder, path, commit, blob, _size = line.split("\t")
            self.manifest[folder, path] = (commit, blob)

    def read(self, folder: str, path: str) -> bytes:
        data = (self.root / folder / path).read_bytes()
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        expected = self.manifest[folder, path][1]
        if blob != expected:
            raise SystemExit(f"{folder}/{path}: blob {blob} != MANIFEST {expected}")
        return data

    def hexa(self, path: str) -> list[dict[str, Any]]:
        """The recorded responses of a ``responses`` recorder file."""
        doc = yaml.safe_load(self.read("BLSQ-openhexa-toolbox", f"{HEXA}/{path}"))
        return [entry["response"] for entry in doc["responses"]]

    def shim(self, version: str) -> list[dict[str, Any]]:
        """The entries of a Cypress network-shim file."""
        data = self.read(
            "dhis2-aggregate-data-entry-app", f"{SHIM}/{version}/static_resources.json"
        )
        entries: list[dict[str, Any]] = json.loads(data)
        return entries


def hexa_interactions(
    responses: Iterable[dict[str, Any]], *, host: str | None = None
) -> tuple[Interaction, ...]:
    """Recorder responses as interactions, without pings, optionally moved to ``host``."""
    result = []
    for response in responses:
        url = response["url"]
        if url.endswith("/api/system/ping"):
            continue
        if host is not None:
            parts = urlsplit(url)
            url = host + parts.path + (f"?{parts.query}" if parts.query else "")
        result.append(
            Interaction(
                uri=url,
                body=response["body"].encode("utf-8"),
                status=int(response["status"]),
                method=response["method"],
            )
        )
    return tuple(result)


def shim_body(entry: dict[str, Any]) -> bytes:
    body = entry["responseBody"]
    if isinstance(body, list):  # non-deterministic: several recorded variants
        body = body[0]
    return str(body).encode("utf-8")


def shim_base(entries: list[dict[str, Any]]) -> str:
    info = next(e for e in entries if e["path"] == "/api/system/info")
    return str(json.loads(shim_body(info))["contextPath"]).rstrip("/")


def shim_interactions(entries: list[dict[str, Any]], base: str) -> tuple[Interaction, ...]:
    """``/api/system/info`` and every ``/api/NN/me?fields=...`` entry of a shim file."""
    result = []
    for entry in entries:
        path = entry["path"]
        wanted = path == "/api/system/info" or ("/me?" in path and path.startswith("/api/"))
        if not wanted:
            continue
        result.append(
            Interaction(
                uri=base + path,
                body=shim_body(entry),
                status=int(entry["statusCode"]),
                content_type=str(entry["responseHeaders"].get("content-type", "application/json")),
                method=entry["method"],
            )
        )
    return tuple(result)


def system_info_of(interactions: Iterable[Interaction]) -> bytes:
    return next(i.body for i in interactions if i.uri.endswith("/api/system/info"))


def build(fx: Fixtures) -> list[Cassette]:
    cassettes: list[Cassette] = []
    real_play_2017 = "REAL: play.dhis2.org/demo, 2017-10-17"
    real_sl_2024 = "REAL: local Docker DHIS2, Sierra Leone demo DB, 2024-07-26"

    def add(
        directory: str, name: str, interactions: Iterable[Interaction], note: str, *src: Source
    ):
        cassettes.append(Cassette(directory, name, tuple(interactions), src, note))

    # -- session: /api/system/info of every version ---------------------------------------------
    blsq_info = fx.read("BLSQ-dhis2", "spec/fixtures/2.28/system_info.json")
    add(
        "session",
        "blsq-dhis2_2.28_system_info",
        [Interaction("https://play.dhis2.org/demo/api/system/info", blsq_info)],
        "Request reconstructed (raw body; host from its contextPath).",
        Source("BLSQ-dhis2", "spec/fixtures/2.28/system_info.json", "2.28", real_play_2017),
    )
    for version, file, provenance in (
        ("2.36.13.2", "2.36/dhis2_init.yaml", real_sl_2024),
        ("2.37.9.1", "2.37/authenticate.yaml", "REAL: play.dhis2.org/2.37.9.1, 2023-08-08"),
        ("2.38.7", "2.38/dhis2_init.yaml", real_sl_2024),
        ("2.40.0.1", "2.40/authenticate.yaml", "REAL: play.dhis2.org/40.0.1, 2023-08-08"),
        ("2.40.4.1", "2.40/dhis2_init.yaml", real_sl_2024),
        ("2.41.0.1", "2.41/dhis2_init.yaml", real_sl_2024),
    ):
        add(
            "session",
            "openhexa_" + file.replace("/", "_").removesuffix(".yaml"),
            hexa_interactions(fx.hexa(file)),
            "Recorded URL; the /api/system/ping answer is left out.",
            Source("BLSQ-openhexa-toolbox", f"{HEXA}/{file}", version, provenance),
        )
    for api, version, provenance in (
        ("38", "2.38-SNAPSHOT", "REAL: debug.dhis2.org/dev, 2022-02-28"),
        ("40", "2.40.1-SNAPSHOT", "REAL: test.e2e.dhis2.org/analytics-2.40, 2023-05-18"),
        ("43", "2.43-SNAPSHOT", "REAL: local server (localhost:9090), 2025-10-13"),
    ):
        entries = fx.shim(api)
        add(
            "session",
            f"aggregate-data-entry_{api}_static_resources",
            shim_interactions(entries, shim_base(entries)),
            "Recorded path and headers' content-type; host from system/info contextPath; "
            "system/info is the first of the recorded variants; only /api/system/info and "
            "/api/NN/me?fields=... kept.",
            Source(
                "dhis2-aggregate-data-entry-app",
                f"{SHIM}/{api}/static_resources.json",
                version,
                provenance,
            ),
        )
    add(
        "session",
        "android-sdk_system_info",
        [
            Interaction(
                "https://play.dhis2.org/android-current/api/system/info",
                fx.read("dhis2-dhis2-android-sdk", f"{ANDROID}/systeminfo/system_info.json"),
            )
        ],
        "Request reconstructed (raw body; host from its contextPath).",
        Source(
            "dhis2-dhis2-android-sdk",
            f"{ANDROID}/systeminfo/system_info.json",
            "says 2.41.0 (edited; buildTime 2017)",
            "MOCK: edited Postman capture",
        ),
    )
    add(
        "session",
        "maintenance_current_user",
        [
            Interaction(
                "https://debug.dhis2.org/dev/api/me",
                fx.read("dhis2-maintenance-app-beta", "src/__mocks__/currentUserMock.json"),
            )
        ],
        "Request reconstructed: upstream does not record the fields it asked for.",
        Source(
            "dhis2-maintenance-app-beta",
            "src/__mocks__/currentUserMock.json",
            "~2.41",
            "Captured from debug.dhis2.org/dev, name/email anonymised, prettier-formatted",
        ),
    )

    # -- session: paged lists --------------------------------------------------------------------
    for name, file, uri, version in (
        (
            "organisation_units",
            "organisation_units.json",
            "https://play.dhis2.org/demo/api/organisationUnits?page=1&pageSize=50",
            "2.28",
        ),
        (
            "data_elements",
            "data_elements.json",
            "https://play.dhis2.org/demo/api/dataElements?pageSize=1",
            "2.28",
        ),
        (
            "programs",
            "programs.json",
            "https://play.dhis2.org/demo/api/programs?fields=id,displayName&page=1&pageSize=50",
            "2.28",
        ),
    ):
        add(
            "session",
            f"blsq-dhis2_2.28_{name}",
            [Interaction(uri, fx.read("BLSQ-dhis2", f"spec/fixtures/2.28/list/{file}"))],
            "Request reconstructed from the body's pager (page 1 of its pageSize).",
            Source("BLSQ-dhis2", f"spec/fixtures/2.28/list/{file}", version, real_play_2017),
        )
    add(
        "session",
        "blsq-iaso_2.32.3_orgunits_page1",
        [
            Interaction(
                "https://play.dhis2.org/2.32.3/api/organisationUnits?page=1&pageSize=50",
                fx.read("BLSQ-iaso", "iaso/tests/fixtures/dhis2/orgunits_page1.json"),
            )
        ],
        "Request reconstructed from the body's pager and hrefs.",
        Source(
            "BLSQ-iaso",
            "iaso/tests/fixtures/dhis2/orgunits_page1.json",
            "2.32.3",
            "REAL: play.dhis2.org/2.32.3 (pretty-printed)",
        ),
    )
    for file in ("2.41/api_get_paged.yaml", "2.41/data_elements.yaml"):
        add(
            "session",
            "openhexa_" + file.replace("/", "_").removesuffix(".yaml"),
            hexa_interactions(fx.hexa(file)),
            "Recorded URLs (page 1 was asked without page=, which DHIS2 reads as page=1).",
            Source("BLSQ-openhexa-toolbox", f"{HEXA}/{file}", "2.41.0.1", real_sl_2024),
        )
    add(
        "session",
        "maintenance_2.41_data_elements_page1",
        [
            Interaction(
                "https://debug.dhis2.org/dev/api/41/dataElements?page=1&pageSize=20&fields=name,"
                "domainType,valueType,categoryCombo[id,%20displayName],lastUpdated,"
                "sharing[public],id,access",
                fx.read(
                    "dhis2-maintenance-app-beta",
                    "src/pages/dataElements/__mocks__/list/dataElementsMock.json",
                ),
            )
        ],
        "Request reconstructed from the body's pager.nextPage (page 1 of 64).",
        Source(
            "dhis2-maintenance-app-beta",
            "src/pages/dataElements/__mocks__/list/dataElementsMock.json",
            "2.41 dev",
            "Captured from debug.dhis2.org/dev, prettier-formatted",
        ),
    )

    # -- events ------------------------------------------------------------------------------------
    lower = f"{ANDROID}/event/new_tracker_importer_events_lower_v41.json"
    greater = f"{ANDROID}/event/new_tracker_importer_events_greater_equal_v41.json"
    android_events = "MOCK: hand-made by the DHIS2 Android team (UIDs 'single1', 'single2')"
    event_note = (
        "Events request reconstructed: what iter_events sends for EventQuery(program="
        "'lxAQ7Zs9VYR', page_size=50) on this version (fields is not matched). System info "
        "moved to http://dhis2.test, body unchanged."
    )
    for version, hexa_file, events_file, org_unit_mode, order in (
        ("2.36.13.2", "2.36/dhis2_init.yaml", lower, "ouMode", "lastUpdated:asc"),
        ("2.40.4.1", "2.40/dhis2_init.yaml", lower, "ouMode", "updatedAt:asc"),
        ("2.41.0.1", "2.41/dhis2_init.yaml", greater, "orgUnitMode", "updatedAt:asc"),
    ):
        info = hexa_interactions(fx.hexa(hexa_file), host=TEST_HOST)
        shape = "instances" if events_file == lower else "events"
        add(
            "events",
            f"tracker_{shape}_{version.rsplit('.', 2)[0]}",
            [
                *info,
                Interaction(
                    f"{TEST_HOST}/api/tracker/events?program=lxAQ7Zs9VYR&{org_unit_mode}=ACCESSIBLE"
                    f"&order={order}&pageSize=50&page=1",
                    fx.read("dhis2-dhis2-android-sdk", events_file),
                ),
            ],
            event_note,
            Source(
                "BLSQ-openhexa-toolbox",
                f"{HEXA}/{hexa_file}",
                version,
                real_sl_2024,
                "system/info (the version and time zone)",
            ),
            Source(
                "dhis2-dhis2-android-sdk",
                events_file,
                "<2.41 shape" if shape == "instances" else ">=2.41 shape",
                android_events,
                "/api/tracker/events page",
            ),
        )
    shim43 = fx.shim("43")
    info43 = Interaction(
        f"{TEST_HOST}/api/system/info",
        system_info_of(shim_interactions(shim43, shim_base(shim43))),
    )
    add(
        "events",
        "tracker_events_2.43",
        [
            info43,
            Interaction(
                f"{TEST_HOST}/api/tracker/events?program=lxAQ7Zs9VYR&orgUnitMode=ACCESSIBLE"
                "&order=updatedAt:asc&pageSize=50&page=1",
                fx.read("dhis2-dhis2-android-sdk", greater),
            ),
        ],
        event_note + " The 2.43-SNAPSHOT server's time zone is Europe/Oslo.",
        Source(
            "dhis2-aggregate-data-entry-app",
            f"{SHIM}/43/static_resources.json",
            "2.43-SNAPSHOT",
            "REAL: local server (localhost:9090), 2025-10-13",
            "system/info, first recorded variant",
        ),
        Source(
            "dhis2-dhis2-android-sdk",
            greater,
            ">=2.41 shape",
            android_events,
            "/api/tracker/events page",
        ),
    )
    add(
        "events",
        "legacy_events_2.28",
        [
            Interaction("https://play.dhis2.org/demo/api/system/info", blsq_info),
            Interaction(
                "https://play.dhis2.org/demo/api/events?program=eBAyeGv0exc&orgUnit=DiszpKrYNg8"
                "&ouMode=DESCENDANTS&order=lastUpdated:asc&pageSize=50&page=1&fields=*",
                fx.read("BLSQ-dhis2", "spec/fixtures/2.28/list/events.json"),
            ),
        ],
        "Requests reconstructed: what iter_events sends for EventQuery(program='eBAyeGv0exc', "
        "org_unit='DiszpKrYNg8', page_size=50) to the legacy /api/events. Both bodies come "
        "from the same server (play.dhis2.org/demo, October 2017).",
        Source(
            "BLSQ-dhis2",
            "spec/fixtures/2.28/system_info.json",
            "2.28",
            real_play_2017,
            "system/info (no serverTimeZoneId: timestamps stay naive)",
        ),
        Source(
            "BLSQ-dhis2",
            "spec/fixtures/2.28/list/events.json",
            "2.28",
            "REAL: play.dhis2.org/demo",
            "legacy /api/events page",
        ),
    )

    # -- dataValueSets GET -------------------------------------------------------------------------
    for version, file, provenance in (
        ("2.36.13.2", "2.36/data_value_sets_get_start_end.yaml", real_sl_2024),
        (
            "2.37.9.1",
            "2.37/data_value_sets/get_start_end.yaml",
            "REAL: play.dhis2.org/2.37.9.1, 2023-08-08",
        ),
        (
            "2.40.0.1",
            "2.40/data_value_sets/get_period.yaml",
            "REAL: play.dhis2.org/40.0.1, 2023-08-08",
        ),
        ("2.41.0.1", "2.41/data_value_sets_get_dataset.yaml", real_sl_2024),
    ):
        stem = file.replace("/", "_").removesuffix(".yaml").replace("data_value_sets_", "")
        add(
            "datavaluesets",
            f"openhexa_{stem}",
            hexa_interactions(fx.hexa(file)),
            "Recorded URLs (children=False as the Python client sent it).",
            Source("BLSQ-openhexa-toolbox", f"{HEXA}/{file}", version, provenance),
        )
    add(
        "datavaluesets",
        "blsq-dhis2_2.28_data_value_sets",
        [
            Interaction(
                "https://play.dhis2.org/demo/api/dataValueSets?dataSet=sNgO1RMIhXz&period=201601"
                "&orgUnit=Rp268JB6Ne4",
                fx.read("BLSQ-dhis2", "spec/fixtures/2.28/list/data_value_sets.json"),
            )
        ],
        "Request reconstructed from the body's dataSet, period and orgUnit.",
        Source(
            "BLSQ-dhis2",
            "spec/fixtures/2.28/list/data_value_sets.json",
            "2.28",
            "REAL: play.dhis2.org/demo",
        ),
    )
    return cassettes


# -- writing -------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Pretty-printed bodies read best as literal blocks; PyYAML falls back to quoting when a
    # literal block could not hold the text exactly (trailing spaces, tabs...).
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

_REASONS = {200: "OK", 404: "Not Found"}


def cassette_yaml(cassette: Cassette) -> str:
    interactions = [
        {
            "request": {"body": None, "headers": {}, "method": i.method, "uri": i.uri},
            "response": {
                "status": {"code": i.status, "message": _REASONS.get(i.status, "")},
                "headers": {"Content-Type": [i.content_type]},
                "body": {"string": i.body.decode("utf-8")},
            },
        }
        for i in cassette.interactions
    ]
    header = (
        "# Generated by tests/cassettes/build_cassettes.py; do not edit by hand.\n"
        "# Response bodies are verbatim upstream bytes; source, commit, blob and licence:\n"
        f"# see {cassette.directory}/SOURCE.md.\n"
    )
    text = yaml.dump(
        {"interactions": interactions, "version": 1},
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        width=1_000_000,
    )
    return header + text


def check_round_trip(path: Path, cassette: Cassette) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for written, wanted in zip(doc["interactions"], cassette.interactions, strict=True):
        if written["response"]["body"]["string"].encode("utf-8") != wanted.body:
            raise SystemExit(f"{path}: a body did not survive YAML unchanged")


def source_md(fx: Fixtures, directory: str, cassettes: list[Cassette]) -> tuple[str, set[str]]:
    lines = [
        f"# Sources of the cassettes in `tests/cassettes/{directory}/`",
        "",
        "Generated by `tests/cassettes/build_cassettes.py`. Every response body is the upstream "
        "file's bytes (or the body string inside an upstream recording) unchanged; the git blob "
        "id is that of the upstream file, checked at build time against "
        "`shared/fixtures/dhis2/MANIFEST.tsv`. Provenance: **REAL** = recorded from a running "
        "DHIS2 server; **MOCK** = written or edited by the upstream authors.",
        "",
        "Licences: each upstream repository's licence is copied here as `LICENSE.<owner>-<repo>`.",
        "",
    ]
    folders: set[str] = set()
    for cassette in cassettes:
        lines += [f"## `{cassette.name}.yaml`", ""]
        lines += [f"Requests: {cassette.request_note}", ""]
        lines += [
            "| part | upstream repo | commit | path | blob | DHIS2 version | provenance "
            "| licence |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for src in cassette.sources:
            repo, licence, _ = REPOS[src.folder]
            commit, blob = fx.manifest[src.folder, src.path]
            folders.add(src.folder)
            lines.append(
                f"| {src.note or 'all'} | https://github.com/{repo} | `{commit}` | `{src.path}` "
                f"| `{blob}` | {src.version} | {src.provenance} | {licence} "
                f"(`LICENSE.{src.folder}`) |"
            )
        lines.append("")
    return "\n".join(lines), folders


def write(fx: Fixtures, cassettes: list[Cassette]) -> None:
    for directory in sorted({c.directory for c in cassettes}):
        target = HERE / directory
        if target.exists():
            for old in target.iterdir():
                old.unlink()
        target.mkdir(exist_ok=True)
        mine = [c for c in cassettes if c.directory == directory]
        for cassette in mine:
            path = target / f"{cassette.name}.yaml"
            path.write_text(cassette_yaml(cassette), encoding="utf-8")
            check_round_trip(path, cassette)
        text, folders = source_md(fx, directory, mine)
        (target / "SOURCE.md").write_text(text, encoding="utf-8")
        for folder in sorted(folders):
            shutil.copyfile(fx.root / folder / REPOS[folder][2], target / f"LICENSE.{folder}")
        print(f"{directory}: {len(mine)} cassettes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    args = parser.parse_args(argv)
    fx = Fixtures(args.fixtures)
    write(fx, build(fx))
    return 0


if __name__ == "__main__":
    sys.exit(main())
