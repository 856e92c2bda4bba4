"""A gRPC client that knows nothing of espresso but what server reflection tells it.

Usage: python3 reflection_client.py HOST:PORT CONTENT

Lists the services over grpc.reflection.v1alpha (the version grpcio-reflection speaks), then calls
`espresso.filter.v1.Filter/Check` with CONTENT and `grpc.health.v1.Health/Check` for the server and
for the filter service. Every request and reply type comes from the reflected descriptors (no
generated stubs). Prints one JSON object: {"services", "check", "health"}.

server/tests/server/reflection.rs runs it against a live server and checks what it prints.
"""

import json
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.json_format import MessageToDict
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TIMEOUT_SECONDS = 10


def call(channel, pool, service_name, method_name, fields):
    """Calls one unary method, building the request and reading the reply from descriptors."""
    method = pool.FindServiceByName(service_name).FindMethodByName(method_name)
    request_class = GetMessageClass(method.input_type)
    reply_class = GetMessageClass(method.output_type)
    stub = channel.unary_unary(
        f"/{service_name}/{method_name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=reply_class.FromString,
    )
    reply = stub(request_class(**fields), timeout=TIMEOUT_SECONDS)
    return MessageToDict(reply)


def main(address, content):
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT_SECONDS)
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = DescriptorPool(database)
        services = sorted(database.get_services())
        check = call(channel, pool, "espresso.filter.v1.Filter", "Check", {"content": content})
        health = {
            name: call(channel, pool, "grpc.health.v1.Health", "Check", {"service": name})[
                "status"
            ]
            for name in ["", "espresso.filter.v1.Filter"]
        }
    print(json.dumps({"services": services, "check": check, "health": health}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    main(sys.argv[1], sys.argv[2])
