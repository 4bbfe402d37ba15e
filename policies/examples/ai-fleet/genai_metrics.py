"""An AI agent reporting its model calls to swarmpilot with the OpenTelemetry SDK.

It records the two histograms of OpenTelemetry's GenAI semantic conventions that swarmpilot
reads, with the attributes it needs:

- gen_ai.client.token.usage ({token}): one observation per call and token type
  (gen_ai.token.type = input | output);
- gen_ai.client.operation.duration (s): one observation per call, with error.type set when
  the call failed (a provider's 429 is "429" or its SDK's RateLimitError).

Both carry gen_ai.provider.name and gen_ai.request.model, which the policy's [genai] price
table turns into money. The resource names the agent (service.instance.id) and the pool it
joins (swarmpilot.pool). Point the exporter at the controller the usual OpenTelemetry way:

    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://127.0.0.1:8080/v1/metrics \
    OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20$SWARMPILOT_TOKEN" \
    python3 genai_metrics.py --agent coder-1 --pool coders

With an instrumentation library (opentelemetry-instrumentation-openai-v2, for one) the SDK
records these for you: only the resource attributes and the exporter are yours to set. This
script records them by hand around simulated calls, `--rounds` times, exporting after each
round, and prints what it sent.
"""

import argparse
import sys
import time

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

results = []


class RecordingExporter(OTLPMetricExporter):
    """The SDK's exporter, remembering what each export returned."""

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        results.append(result)
        return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="coder-1")
    parser.add_argument("--pool", default="coders")
    parser.add_argument("--provider", default="openai")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3, help="successful calls per round")
    parser.add_argument("--throttled", type=int, default=1, help="429s per round")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between rounds")
    args = parser.parse_args()

    resource = Resource.create(
        {"service.instance.id": args.agent, "service.name": "coder", "swarmpilot.pool": args.pool}
    )
    # Exports come from force_flush after each round; a real agent keeps the periodic timer
    # (OTEL_METRIC_EXPORT_INTERVAL, 60 s by default: 10 s suits a controller sampling every 2 s).
    reader = PeriodicExportingMetricReader(RecordingExporter(), export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
    meter = provider.get_meter("swarmpilot.example.genai")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    model = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": args.provider,
        "gen_ai.request.model": args.model,
    }

    def call(tokens_in, tokens_out, seconds, error_type=None):
        """What an instrumented client records around one model call."""
        if error_type is None:
            tokens.record(tokens_in, {**model, "gen_ai.token.type": "input"})
            tokens.record(tokens_out, {**model, "gen_ai.token.type": "output"})
            duration.record(seconds, model)
        else:
            duration.record(seconds, {**model, "error.type": error_type})

    for round_ in range(args.rounds):
        if round_:
            time.sleep(args.pause)
        for _ in range(args.calls):
            call(1200, 300, 0.8)
        for _ in range(args.throttled):
            call(0, 0, 0.05, error_type="429")
        if not provider.force_flush(timeout_millis=15_000):
            sys.exit(f"round {round_ + 1}: force_flush timed out")
        print(f"round {round_ + 1}: {args.calls} calls, {args.throttled} throttled", flush=True)

    print("export results:", [r.name for r in results])
    if len(results) < args.rounds or any(r != MetricExportResult.SUCCESS for r in results):
        sys.exit(f"an export failed: {results}")


if __name__ == "__main__":
    main()
