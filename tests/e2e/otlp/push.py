"""Pushes metrics to swarmpilot's POST /v1/metrics with the real OpenTelemetry Python SDK.

Configured the way an operator would configure any OTLP exporter, through the environment:
OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS (the bearer token),
OTEL_EXPORTER_OTLP_COMPRESSION. Exports twice, a second apart, and exits non-zero unless the
server accepted both exports.

Round 1: gauge queue.depth 42.5, counter tasks.done 5, histogram task.duration 5, 15, 120.
Round 2: gauge 43.5, counter +3 (8 in all), histogram 30, 40.
"""

import sys
import time

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

results = []
# When each export's tasks.done point was taken, nanoseconds: the rate the controller derives
# is the counter's increase over exactly this time.
counter_times = []


class RecordingExporter(OTLPMetricExporter):
    """The SDK's exporter, remembering what each export returned."""

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == "tasks.done":
                        counter_times.extend(p.time_unix_nano for p in metric.data.data_points)
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        results.append(result)
        return result


queue_depth = [42.5]


def observe_queue(options: CallbackOptions):
    yield Observation(queue_depth[0])


resource = Resource.create(
    {
        "service.name": "checkout",
        "service.instance.id": "checkout-1",
        "swarmpilot.pool": "edge",
    }
)
# A long interval: the test exports with force_flush, not on a timer.
reader = PeriodicExportingMetricReader(RecordingExporter(), export_interval_millis=3_600_000)
# No export at exit: the test checks what the two rounds sent.
provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
meter = provider.get_meter("swarmpilot.e2e")
meter.create_observable_gauge("queue.depth", callbacks=[observe_queue])
tasks_done = meter.create_counter("tasks.done")
task_duration = meter.create_histogram("task.duration", unit="ms")

tasks_done.add(5)
for value in (5, 15, 120):
    task_duration.record(value)
if not provider.force_flush(timeout_millis=15_000):
    sys.exit("first force_flush timed out")

time.sleep(1.0)
queue_depth[0] = 43.5
tasks_done.add(3)
for value in (30, 40):
    task_duration.record(value)
if not provider.force_flush(timeout_millis=15_000):
    sys.exit("second force_flush timed out")

print("export results:", [r.name for r in results])
print("tasks.done times:", " ".join(str(t) for t in counter_times))
if len(results) < 2 or any(r != MetricExportResult.SUCCESS for r in results):
    sys.exit(f"an export failed: {results}")
