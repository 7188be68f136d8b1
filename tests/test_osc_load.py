"""OSC load: sustained answered messages/s and reply latency, against a bare UDP answerer baseline.

Reports, never asserts on speed (the CI machine is shared); asserts that every message was answered.
`--long` runs 5 s per measurement instead of 0.5 s; `stemd bench osc` is the standalone form.
"""

import json

from osc_harness import osc  # noqa: F401 (fixture)
from stemd.benchmarks.osc_load import compare, table, to_json


def test_sustained_load_is_answered_and_reported(osc, request):
    seconds = 5.0 if request.config.getoption("--long") else 0.5
    srv = osc(rate_limit_per_s=100000.0)
    results = compare(srv.address, seconds, windows=(1, 32))
    print("\n" + table(results))
    print(to_json(results))
    for r in results:
        assert r.lost == 0 and r.answered >= 50, r
    stemd = [r for r in results if r.target == "stemd"]
    assert srv.stats()["answered"] >= sum(r.answered for r in stemd)
    assert srv.stats()["errors"] == 0  # the load mix is all valid
    assert json.loads(to_json(results))[0]["target"] == "baseline"
