"""The generated gRPC stubs the examples import: from examples/python/generated/,
or from the directory named by ALLOCATION_PYTHON_STUBS (tests/examples.rs
generates them afresh into a temporary one). Exits with what to do when they
are missing (see allocate.py's docstring or the README)."""

import os
import sys

STUBS = os.environ.get(
    "ALLOCATION_PYTHON_STUBS",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "generated"),
)
sys.path.insert(0, STUBS)

try:
    import grpc
    from allocation.v1 import allocation_pb2 as pb
    from allocation.v1 import allocation_pb2_grpc as rpc
except ImportError as error:
    sys.exit(
        f"cannot import the gRPC stubs from {STUBS} ({error}): install "
        "examples/python/requirements.txt and generate them (see allocate.py's "
        "docstring or the README)"
    )

__all__ = ["grpc", "pb", "rpc"]
