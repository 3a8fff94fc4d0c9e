"""Resolve 5,000 data element codes against FakeDhis2: requests sent versus the URL-limit minimum.

Run: ``python benchmarks/bench_resolve.py [--count N] [--version 2.41]``.

The minimum is a lower bound over any packing: the bytes every code adds to the ``in`` filter
(its encoded length plus an encoded comma), divided by what one URL of ``MAX_URL_LENGTH`` bytes
leaves for them after the fixed part (base URL, path, ``fields``, paging), rounded up.
Times are printed for information only; nothing is asserted about them.
"""

from __future__ import annotations

import argparse
import math
import time
from urllib.parse import quote_plus, urlencode

from dhis2_lmis.dhis2.auth import BasicAuth
from dhis2_lmis.dhis2.session import MAX_URL_LENGTH, Dhis2Session
from dhis2_lmis.lmis.references import ItemResolver
from dhis2_lmis.testing import FakeDhis2

FIELDS = "id,code,name,valueType,zeroIsSignificant"


def minimum_requests(base_url: str, codes: list[str]) -> int:
    """The fewest ``code:in:[...]`` requests under the URL limit any packing could manage."""
    params = {"filter": "code:in:[]", "fields": FIELDS, "page": 1, "pageSize": len(codes) + 1}
    fixed = len(f"{base_url}/api/dataElements?{urlencode(params)}")
    comma = len(quote_plus(","))
    capacity = MAX_URL_LENGTH - fixed + comma
    return math.ceil(sum(len(quote_plus(c)) + comma for c in codes) / capacity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="data elements to seed and resolve")
    parser.add_argument("--version", default="2.41", help="DHIS2 version the fake answers as")
    args = parser.parse_args()

    with FakeDhis2(version=args.version) as fake:
        codes = []
        for n in range(args.count):
            code = f"LMIS_SOH_ITEM_{n:05d}"
            fake.add_data_element(f"de{n:09d}", code, f"Item {n} stock on hand")
            codes.append(code)
        with Dhis2Session(fake.url, auth=BasicAuth("admin", "district")) as session:
            session.server_info  # noqa: B018 - warm the session outside the timed part
            resolver = ItemResolver([], session=session)
            rows = []
            for label in ("first resolution", "second resolution (cached)"):
                fake.clear_requests()
                started = time.perf_counter()
                found = resolver.resolve_uids(codes)
                elapsed = time.perf_counter() - started
                sent = [r for r in fake.requests if r.path == "/api/dataElements"]
                longest = max(
                    (len(f"{fake.url}{r.path}?{urlencode(r.query, doseq=True)}") for r in sent),
                    default=0,
                )
                rows.append((label, len(found), len(sent), longest, elapsed * 1000))
            minimum = minimum_requests(fake.url, codes)

    print(f"{args.count} codes, URL limit {MAX_URL_LENGTH} bytes, DHIS2 {args.version} (fake)")
    print(f"theoretical minimum requests: {minimum}")
    print()
    header = f"{'run':<28} {'resolved':>8} {'requests':>8} {'longest URL':>11} {'ms':>9}"
    print(header)
    print("-" * len(header))
    for label, resolved, requests, longest, ms in rows:
        print(f"{label:<28} {resolved:>8} {requests:>8} {longest:>11} {ms:>9.1f}")
    print()
    first, second = rows[0][2], rows[1][2]
    verdict = "minimal" if first == minimum else f"{first - minimum} above the minimum"
    print(f"first resolution: {first} requests ({verdict}); second resolution: {second} requests")


if __name__ == "__main__":
    main()
