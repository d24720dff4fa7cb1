"""Two Apps in one file, each with a function named `which`: `FILE::first` / `FILE::second` pick one."""

import modal

first = modal.App("run-first")
second = modal.App("run-second")


@first.function(name="which")
def first_which() -> str:
    return "first"


@second.function(name="which")
def second_which() -> str:
    return "second"
