"""Prints every scalar in a folder of TensorBoard event files as "tag step value", read with
TensorBoard's own EventAccumulator (which checks each record's CRCs)."""
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

accumulator = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})  # 0: keep every event
accumulator.Reload()
for tag in sorted(accumulator.Tags()["scalars"]):
    for event in accumulator.Scalars(tag):
        print(tag, event.step, repr(event.value))
