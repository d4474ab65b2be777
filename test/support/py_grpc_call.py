"""One unary call with Python's grpcio (gRPC C-core): an independent gRPC
implementation for interop tests. Reads a JSON job on stdin, prints a JSON
result on stdout. Request/response bytes are opaque here (hex), so no
generated Python code is needed."""
import json
import sys

import grpc


def main() -> None:
    job = json.load(sys.stdin)
    root = open(job["ca"], "rb").read()
    key = open(job["key"], "rb").read() if job.get("key") else None
    cert = open(job["cert"], "rb").read() if job.get("cert") else None
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=cert)
    # "plaintext": what a client that forgot TLS does (grpcurl -plaintext).
    channel_of = (lambda: grpc.insecure_channel(job["target"])) if job.get("plaintext") else (lambda: grpc.secure_channel(job["target"], creds))
    with channel_of() as channel:
        call = channel.unary_unary(job["method"], request_serializer=None, response_deserializer=None)
        try:
            reply = call(bytes.fromhex(job["request"]), metadata=[tuple(kv) for kv in job["metadata"]], timeout=10)
            out = {"code": 0, "response": reply.hex()}
        except grpc.RpcError as err:
            out = {"code": err.code().value[0], "details": err.details()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
