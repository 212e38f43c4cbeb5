# SPDX-License-Identifier: MIT
"""Runs the integration tests: every test_* function of every
tests/integration/test_*.py module, in file order, each with a fresh view
of the world it sets up itself. Prints one PASS/FAIL/SKIP line per test and
a summary line "integration: N passed, N failed, N skipped"."""
import importlib.util
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402


# A test that hangs (a peer that never answers, a lost wake-up) must fail,
# not stall the whole run: every test gets this long.
TEST_TIMEOUT_S = 600


class TestTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise TestTimeout("test did not finish within %d s" % TEST_TIMEOUT_S)


def main():
    import signal
    signal.signal(signal.SIGALRM, on_alarm)
    only = [a for a in sys.argv[1:] if not a.startswith("-")]
    passed = failed = skipped = 0
    failures = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        modname = fname[:-3]
        spec = importlib.util.spec_from_file_location(modname, os.path.join(HERE, fname))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        tests = [(n, getattr(mod, n)) for n in mod.__dict__ if n.startswith("test_")
                 and callable(getattr(mod, n))]
        tests = [(n, f) for n, f in tests
                 if not only or any(o in "%s.%s" % (modname, n) for o in only)]
        if not tests:
            continue
        ctx = None
        try:
            if hasattr(mod, "setup_module"):
                ctx = mod.setup_module()
        except Exception:
            tb = traceback.format_exc()
            for n, _ in tests:
                failed += 1
                failures.append("%s.%s" % (modname, n))
                print("FAIL %s.%s (setup_module failed)" % (modname, n), flush=True)
            print(tb, flush=True)
            continue
        for n, f in tests:
            name = "%s.%s" % (modname, n)
            t0 = time.time()
            signal.alarm(TEST_TIMEOUT_S)
            try:
                if f.__code__.co_argcount == 1:
                    f(ctx)
                else:
                    f()
                passed += 1
                print("PASS %s (%.1fs)" % (name, time.time() - t0), flush=True)
            except harness.Skip as e:
                skipped += 1
                print("SKIP %s: %s" % (name, e), flush=True)
            except Exception:
                failed += 1
                failures.append(name)
                print("FAIL %s (%.1fs)" % (name, time.time() - t0), flush=True)
                print(traceback.format_exc(), flush=True)
            finally:
                signal.alarm(0)
        if hasattr(mod, "teardown_module"):
            try:
                mod.teardown_module(ctx)
            except Exception:
                print("teardown of %s failed:\n%s" % (modname, traceback.format_exc()),
                      flush=True)
    for n in failures:
        print("failed: %s" % n)
    print("integration: %d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
