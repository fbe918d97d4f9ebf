"""Jobs for the isolation tests: what hostile input could make a parser do."""

import os
import time


def loaded(*names):
    """Which of these modules the worker had imported before this job."""
    import sys
    return [name for name in names if name in sys.modules]


def square(x):
    return x * x


def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


def sleep_forever(data):
    time.sleep(3600)


def eat_memory(data):
    hoard = []
    while True:
        hoard.append(bytearray(50 * 1024 * 1024))


def crash(data):
    os._exit(3)


def bug(data):
    return 1 / 0


def never_finishes(*args):
    """Whatever it is given, it keeps the worker busy (a reader stuck on a hostile table)."""
    time.sleep(3600)
