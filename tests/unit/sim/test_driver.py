import simpy

from policies.waiting import Delay, Spawn, Until
from sim.driver import drive
from sim.operations import SimOperation, failed


def test_driver_runs_a_workflow_in_simulated_time_and_logs_in_order():
    env = simpy.Environment()
    log = []

    def child(name):
        log.append((f"{name} start", env.now))
        yield Delay(5)
        log.append((f"{name} end", env.now))
        return name

    def parent():
        log.append(("parent", env.now))
        yield Delay(1)
        handle = yield Spawn(child("c"))
        op = SimOperation(env.timeout(2, value="ok"))
        value = yield Until(op)
        log.append((f"until {value}", env.now))
        yield Delay(10)
        log.append(("done", env.now))
        return handle

    p = drive(env, parent())
    env.run()
    assert log == [
        ("parent", 0),
        ("c start", 1),
        ("until ok", 3),
        ("c end", 6),
        ("done", 13),
    ]
    assert p.value.value == "c"


def test_failed_operation_is_raised_inside_the_workflow():
    env = simpy.Environment()
    seen = []

    def wf():
        try:
            yield Until(failed(env, RuntimeError("boom")))
        except RuntimeError as exc:
            seen.append(str(exc))
        return "handled"

    p = drive(env, wf())
    env.run()
    assert seen == ["boom"] and p.value == "handled"
