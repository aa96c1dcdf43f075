"""SimDriver's evaluation records: the simulator's view stays on the robot side."""
import numpy as np


def test_sim_driver_keeps_true_state_and_distance_out_of_what_crosses_the_bridge():
    from hvp.real.drivers import SimDriver
    from hvp.sim import make
    from hvp.sim.randomization import SHIFTS

    driver = SimDriver(make("maze-easy", randomization=SHIFTS["mild"]), name="sim:maze-easy", shift="mild")
    try:
        driver.reset(seed=3)
        for _ in range(4):
            driver.exec_action(np.array([0.5, -0.5], np.float32), 0.0)
        # episode_info travels in every action reply: nothing a real robot could not know
        assert set(driver.episode_info()) == {"step", "success", "done"}
        assert driver.metadata["shift"] == "mild"
        record = driver.evaluation()
        assert (record["episode"], record["seed"], record["steps"], record["shift"]) == (0, 3, 4, "mild")
        assert np.array(record["true_state"]).shape == (5, 2)  # the reset frame and one per action
        assert record["min_distance"] <= record["final_distance"]
        assert record["final_distance"] == driver.episodes[-1].distances[-1]
    finally:
        driver.close()
