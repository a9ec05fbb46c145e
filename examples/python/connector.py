#!/usr/bin/env python3
"""A change-feed connector in Python: the same loop as examples/connector.rs.
Follow WatchEvents for one merchant, sync shipment and tracking events to a
stand-in for the store the orders came from (a JSON file), and keep the last
sequence handled in a state file, so that after being killed it resumes where
it left off (README: "The change feed"). Stubs as for allocate.py:

    target/python-venv/bin/python examples/python/connector.py \\
        --address 127.0.0.1:50051 --merchant acme --state state.txt --store store.json

Delivery is at least once: an event handled but not yet recorded in the state
file comes again after a restart. The store keeps, per order, the sequence of
the last event applied and skips any event not above it, so applying an event
twice changes nothing.
"""

import argparse
import json
import os
import sys
import time

from stubs import grpc, pb, rpc  # the generated code (stubs.py)

SYNCED = (pb.ORDER_EVENT_KIND_SHIPPED, pb.ORDER_EVENT_KIND_TRACKING_STATUS_CHANGED)


def write_atomically(path, text):
    """Replace path with text, so a crash leaves the old file or the new."""
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def last_sequence(state):
    try:
        with open(state) as file:
            return int(file.read().strip() or 0)
    except FileNotFoundError:
        return 0


def apply(store, event):
    """Record a shipment or tracking event in the store, once."""
    if event.kind not in SYNCED:
        return
    try:
        with open(store) as file:
            orders = json.load(file)
    except FileNotFoundError:
        orders = {}
    entry = orders.setdefault(event.order_id, {"last_sequence": 0, "updates": []})
    if entry["last_sequence"] >= event.sequence:
        return  # Applied before.
    entry["last_sequence"] = event.sequence
    entry["updates"].append(
        {
            "sequence": event.sequence,
            "tracking_number": event.tracking_number,
            "tracking_status": pb.TrackingStatus.Name(event.tracking_status),
        }
    )
    write_atomically(store, json.dumps(orders, indent=2))


def follow(stub, merchant, state, store):
    """Follow the feed from the saved sequence until it fails."""
    after = last_sequence(state)
    print(f"resuming after sequence {after}", flush=True)
    request = pb.WatchEventsRequest(merchant_id=merchant, after_sequence=after)
    for event in stub.WatchEvents(request):
        apply(store, event)
        # Only after the store has it: a crash between the two repeats the
        # event, which apply ignores.
        write_atomically(state, str(event.sequence))
        kind = pb.OrderEventKind.Name(event.kind)
        print(f"synced {event.sequence} {kind}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--merchant", required=True)
    parser.add_argument("--state", required=True, help="file keeping the last sequence")
    parser.add_argument("--store", required=True, help="JSON file standing in for the store")
    args = parser.parse_args()
    stub = rpc.AllocationServiceStub(grpc.insecure_channel(args.address))
    while True:
        try:
            follow(stub, args.merchant, args.state, args.store)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.OUT_OF_RANGE:
                # The server no longer keeps these events: a full resync
                # (ListOrders) is needed, which this example leaves to a person.
                sys.exit(f"cannot resume: {error.details()}")
            print(f"feed interrupted ({error.code().name}); reconnecting", flush=True)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
