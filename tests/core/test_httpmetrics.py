"""The HTTP metrics' own collector: what Prometheus reads of the requests counted."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from simplane.core.httpmetrics import BUCKETS, HttpMetrics


def _samples(metrics: HttpMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(metrics)
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_requests_are_counted_by_method_route_and_status():
    metrics = HttpMetrics()
    for status in (200, 200, 404):
        metrics.observe("GET", "/v1/things/{thing_id}", status, 0.001)
    metrics.observe("POST", "/v1/things", 201, 0.001)
    samples = _samples(metrics)
    counts = {labels: value for (name, labels), value in samples.items()
              if name == "simplane_http_requests_total"}
    route = ("route", "/v1/things/{thing_id}")
    assert counts == {
        (("method", "GET"), route, ("status", "200")): 2.0,
        (("method", "GET"), route, ("status", "404")): 1.0,
        (("method", "POST"), ("route", "/v1/things"), ("status", "201")): 1.0,
    }


def test_latency_buckets_are_cumulative_and_hold_their_bound():
    metrics = HttpMetrics()
    # On a bound (`le` holds it), just above one, beyond the last, and the smallest.
    observed = [0.005, 0.0051, 0.25, 11.0, 0.0]
    for seconds in observed:
        metrics.observe("GET", "/v1/me", 200, seconds)
    samples = _samples(metrics)
    labels = (("method", "GET"), ("route", "/v1/me"))
    bucket = {dict(key)["le"]: value for (name, key), value in samples.items()
              if name == "simplane_http_request_duration_seconds_bucket"}
    expected = {str(bound): float(sum(seconds <= bound for seconds in observed))
                for bound in BUCKETS}
    assert {le: bucket[le] for le in expected} == expected
    assert bucket["0.005"] == 2.0 and bucket["0.01"] == 3.0
    assert bucket["+Inf"] == 5.0
    assert samples[("simplane_http_request_duration_seconds_count", labels)] == 5.0
    assert samples[("simplane_http_request_duration_seconds_sum", labels)] == sum(observed)
