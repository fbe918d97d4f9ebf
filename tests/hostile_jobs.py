"""Jobs for the isolation tests: what a hostile file could make a reader do."""

import time


def sleep_forever(att, limits):
    time.sleep(3600)


def eat_memory(att, limits):
    hoard = []
    while True:
        hoard.append(bytearray(50 * 1024 * 1024))


def crash(att, limits):
    import os
    os._exit(3)
