"""Conversations as data: states, transitions, router and the one Machine that runs them.

Nothing here does I/O: the engine reads a Talk, fires a trigger and leaves effects behind.
"""
