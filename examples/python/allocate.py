#!/usr/bin/env python3
"""A Python client of the allocation service, end to end: the same flow as
examples/allocate.rs. Put stock at two fulfillment centers, watch the change
feed, allocate an order, read it back, and check every answer; exit non-zero
on any failure. From the repository root, against a running server:

    python3 -m venv target/python-venv
    target/python-venv/bin/pip install -r examples/python/requirements.txt
    mkdir -p examples/python/generated && target/python-venv/bin/python -m grpc_tools.protoc -I proto --python_out=examples/python/generated --grpc_python_out=examples/python/generated proto/allocation/v1/allocation.proto proto/google/rpc/status.proto
    target/python-venv/bin/python examples/python/allocate.py --address 127.0.0.1:50051

The stubs are imported from examples/python/generated/, or from the directory
named by ALLOCATION_PYTHON_STUBS (tests/examples.rs generates them afresh into
a temporary one).
"""

import argparse
import os
import sys
import time

from stubs import grpc, pb, rpc  # the generated code (stubs.py)

MERCHANT = "acme"


class Failed(Exception):
    """An answer that is not the one this flow must get."""


def check(condition, what):
    if not condition:
        raise Failed(what)


def status_name(status):
    return pb.OrderStatus.Name(status)


def run(address, timeout):
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise Failed(f"no server reachable at {address} within {timeout} s")
    stub = rpc.AllocationServiceStub(channel)

    # Ids of their own each run, so the example can be run again against the
    # same server: allocating an existing order id is refused, and an earlier
    # run's reservations would change where this order ships from.
    run_id = f"{int(time.time())}-{os.getpid()}"
    sku = f"mug-py-{run_id}"
    order_id = f"example-py-{run_id}"

    # Stock: 3 mugs at fc-east, 10 at fc-west. SetInventory adds the SKU to
    # the merchant's catalog; a merchant never upserted has the defaults.
    stub.SetInventory(
        pb.SetInventoryRequest(
            merchant_id=MERCHANT,
            levels=[
                pb.InventoryLevel(sku=sku, fc_id="fc-east", on_hand=3),
                pb.InventoryLevel(sku=sku, fc_id="fc-west", on_hand=10),
            ],
        ),
        timeout=timeout,
    )
    print(f"stocked {sku}: 3 at fc-east, 10 at fc-west")

    # Subscribe before allocating, so the order's event is seen. The server
    # subscribes before it sends the response headers: waiting for them
    # means the subscription is in place.
    events = stub.WatchEvents(
        pb.WatchEventsRequest(merchant_id=MERCHANT), timeout=timeout * 3
    )
    events.initial_metadata()

    order = pb.Order(
        merchant_id=MERCHANT,
        order_id=order_id,
        lines=[pb.OrderLine(sku=sku, quantity=5)],
    )
    order.purchase_time.seconds = 1_764_000_000
    decided = stub.Allocate(pb.AllocateRequest(order=order), timeout=timeout)
    for state in decided.orders:
        print(f"allocated {state.order_id}: {status_name(state.status)}")
        for allocation in state.allocations:
            print(
                f"  {allocation.quantity} x {allocation.sku} from {allocation.fc_id}"
            )
    # 5 mugs: fc-east has 3, so fc-west (10) ships the whole order.
    expected = [(sku, "fc-west", 5)]
    check(len(decided.orders) == 1, f"one order state, got {len(decided.orders)}")
    [state] = decided.orders
    check(
        state.status == pb.ORDER_STATUS_PROCESSING,
        f"status PROCESSING, got {status_name(state.status)}",
    )
    allocations = [(a.sku, a.fc_id, a.quantity) for a in state.allocations]
    check(allocations == expected, f"allocations {expected}, got {allocations}")

    stored = stub.GetOrder(
        pb.GetOrderRequest(merchant_id=MERCHANT, order_id=order_id), timeout=timeout
    )
    print(
        f"read back {stored.order_id}: {status_name(stored.status)}, "
        f"version {stored.version}"
    )
    check(stored.order_id == order_id, f"order {order_id}, got {stored.order_id}")
    check(
        stored.status == pb.ORDER_STATUS_PROCESSING,
        f"stored status PROCESSING, got {status_name(stored.status)}",
    )
    stored_allocations = [(a.sku, a.fc_id, a.quantity) for a in stored.allocations]
    check(
        stored_allocations == expected,
        f"stored allocations {expected}, got {stored_allocations}",
    )
    check(
        stored.version == state.version,
        f"the allocated version {state.version}, got {stored.version}",
    )

    # Print every event until this order's allocation (other clients of the
    # same merchant may have events of their own on the feed).
    try:
        for event in events:
            print(
                f"event: {pb.OrderEventKind.Name(event.kind)} {event.order_id} "
                f"{status_name(event.status)} version {event.order_version}"
            )
            if event.order_id == order_id:
                check(
                    event.kind == pb.ORDER_EVENT_KIND_ALLOCATED,
                    f"an ALLOCATED event, got {pb.OrderEventKind.Name(event.kind)}",
                )
                check(
                    event.status == pb.ORDER_STATUS_PROCESSING,
                    f"event status PROCESSING, got {status_name(event.status)}",
                )
                check(
                    event.order_version == stored.version,
                    f"event version {stored.version}, got {event.order_version}",
                )
                break
        else:
            raise Failed(f"the change feed ended before {order_id}'s event")
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise Failed(f"no event for {order_id} on the change feed") from error
        raise
    finally:
        events.cancel()

    view = stub.GetInventory(
        pb.GetInventoryRequest(merchant_id=MERCHANT, sku=sku), timeout=timeout
    )
    stock = {fc.fc_id: (fc.on_hand, fc.reserved) for fc in view.fcs}
    for fc_id, (on_hand, reserved) in sorted(stock.items()):
        print(f"inventory {sku} at {fc_id}: {on_hand} on hand, {reserved} reserved")
    want = {"fc-east": (3, 0), "fc-west": (10, 5)}
    check(stock == want, f"stock {want}, got {stock}")
    channel.close()


def main():
    parser = argparse.ArgumentParser(
        description="Stock, watch, allocate and read back one order, checking every answer."
    )
    parser.add_argument(
        "--address", default="127.0.0.1:50051", help="HOST:PORT (default %(default)s)"
    )
    parser.add_argument(
        "--timeout-seconds",
        type=float,
        default=10.0,
        help="per call (default %(default)s)",
    )
    args = parser.parse_args()
    try:
        run(args.address, args.timeout_seconds)
    except Failed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        print(f"FAILED: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
