"""A real OTLP/gRPC trace receiver for the tests: the collector's own service
definition (`opentelemetry.proto.collector.trace.v1.TraceService`), served by grpcio
on a free port, keeping every span it is sent with its service's name."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass
class Received:
    service: str
    span: object  # opentelemetry.proto.trace.v1.Span

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_span_id(self) -> str:
        return self.span.parent_span_id.hex()

    def attributes(self) -> dict:
        out = {}
        for kv in self.span.attributes:
            kind = kv.value.WhichOneof("value")
            value = getattr(kv.value, kind)
            if kind == "array_value":
                value = [getattr(v, v.WhichOneof("value")) for v in value.values]
            out[kv.key] = value
        return out

    def links(self) -> list[tuple[str, str]]:
        return [(link.trace_id.hex(), link.span_id.hex()) for link in self.span.links]


@dataclass
class Receiver:
    port: int = 0
    spans: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, predicate, timeout: float = 30.0) -> list[Received]:
        """The spans received, once `predicate` holds for them."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                spans = list(self.spans)
            if predicate(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({(s.service, s.name) for s in spans})
                raise AssertionError(f"spans never arrived; received: {names}")
            time.sleep(0.1)


class _Service(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: Receiver):
        self.receiver = receiver

    def Export(self, request, context):  # noqa: N802 (the protocol's name)
        got = []
        for resource_spans in request.resource_spans:
            service = next(
                (kv.value.string_value for kv in resource_spans.resource.attributes if kv.key == "service.name"), ""
            )
            for scope in resource_spans.scope_spans:
                got.extend(Received(service, span) for span in scope.spans)
        with self.receiver.lock:
            self.receiver.spans.extend(got)
        return trace_service_pb2.ExportTraceServiceResponse()


def start() -> tuple[Receiver, grpc.Server]:
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Service(receiver), server)
    receiver.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return receiver, server
