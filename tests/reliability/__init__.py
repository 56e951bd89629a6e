"""Reliability and security evidence: fault runs, crash runs and the checks they share.

`python -m tests.reliability` runs the fault and crash runs with given seeds and prints their figures;
the pytest files (test_faults.py, test_crash_recovery.py, test_fuzz_conversation.py, ...) run the same
code, bounded, and assert what must hold.
"""
