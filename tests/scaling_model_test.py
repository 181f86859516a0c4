"""The arithmetic of bench/scaling_model.py: all-reduce times for known alpha, beta and p, convoy's
bucket layout, and the replayed step (overlap, exposed communication, stolen processor time)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import scaling_model as m  # noqa: E402

MIB = 1 << 20


def layer(fwd, bwd, floats):
    return {"forward_ms": fwd, "backward_ms": bwd, "param_floats": floats}


class AllreduceTimes(unittest.TestCase):
    def test_ring_is_2_p_minus_1_messages_and_2_p_minus_1_over_p_of_the_bytes(self):
        link = m.Link(alpha=10e-6, beta=1e9)
        # 2*3*10us + 2*3/4 * 1 MB / 1 GB/s = 60 us + 1.5 ms
        self.assertAlmostEqual(m.ring_allreduce_s(1e6, 4, link), 1.56e-3, places=12)
        self.assertEqual(m.ring_allreduce_s(1e6, 1, link), 0.0)
        self.assertEqual(m.ring_allreduce_s(0, 4, link), 0.0)

    def test_tree_pays_alpha_per_level_and_twice_the_bytes(self):
        link = m.Link(alpha=10e-6, beta=1e9)
        # 2*log2(8)*10us + 2 * 1 MB / 1 GB/s
        self.assertAlmostEqual(m.tree_allreduce_s(1e6, 8, link), 60e-6 + 2e-3, places=12)
        # p = 5 rounds up to 3 levels
        self.assertAlmostEqual(m.tree_allreduce_s(1e6, 5, link), 60e-6 + 2e-3, places=12)

    def test_at_scale_the_tree_pays_less_latency_than_the_ring(self):
        link = m.Link(alpha=10e-6, beta=50e9)
        self.assertLess(m.tree_allreduce_s(1 * MIB, 64, link), m.ring_allreduce_s(1 * MIB, 64, link))

    def test_hierarchical_is_the_node_sum_then_the_bucket_across_nodes(self):
        inter, intra = m.Link(20e-6, 1e9), m.Link(1e-6, 10e9)
        n = 4e6
        expected = m.ring_allreduce_s(n, 2, intra) + m.ring_allreduce_s(n, 3, inter)
        self.assertAlmostEqual(m.hierarchical_allreduce_s(n, 3, 2, inter, intra), expected, places=12)
        # one rank per node: nothing to sum inside
        self.assertAlmostEqual(m.hierarchical_allreduce_s(n, 3, 1, inter, intra), m.ring_allreduce_s(n, 3, inter))


class BucketLayout(unittest.TestCase):
    def test_lenet_makes_the_two_buckets_convoy_reports(self):
        # LeNet's layers with parameters: conv1 520, conv2 25050, ip1 400500, ip2 5010 floats; at
        # bucket_mb 1 convoy's start line says "2 gradient bucket(s)": ip2+ip1, then conv2+conv1.
        layers = [layer(0, 0, f) for f in (0, 520, 0, 25050, 0, 400500, 0, 5010, 0)]
        self.assertEqual(m.bucket_layout(layers, MIB), [((5010 + 400500) * 4, 5), ((25050 + 520) * 4, 1)])

    def test_a_large_bucket_holds_everything_and_a_tiny_one_a_layer_each(self):
        layers = [layer(0, 0, f) for f in (10, 0, 20, 30)]
        self.assertEqual(m.bucket_layout(layers, 100 * MIB), [(60 * 4, 0)])
        self.assertEqual(m.bucket_layout(layers, 1), [(120, 3), (80, 2), (40, 0)])


class Step(unittest.TestCase):
    # Three layers; B and C hold 1 MiB of parameters each. Backward runs C (3 ms), B (2), A (4):
    # C's bucket is ready at 3 ms, B's at 5 ms, backward ends at 9 ms.
    TIMING = {"layers": [layer(1, 4, 0), layer(1, 2, MIB // 4), layer(1, 3, MIB // 4)], "update_ms": 0.5}

    def test_without_communication_the_step_is_its_compute(self):
        s = m.simulate_step(self.TIMING, MIB, lambda n: 0.0)
        self.assertAlmostEqual(s["step_ms"], 3 + 9 + 0.5)
        self.assertEqual(s["exposed_ms"], 0.0)

    def test_all_reduces_that_fit_under_backward_are_hidden(self):
        s = m.simulate_step(self.TIMING, MIB, lambda n: 1e-3)  # C: 3-4 ms, B: 5-6 ms
        self.assertEqual(s["exposed_ms"], 0.0)

    def test_all_reduces_queue_one_after_another_and_what_outlasts_backward_is_exposed(self):
        s = m.simulate_step(self.TIMING, MIB, lambda n: 4e-3)  # C: 3-7 ms, B: 7-11 ms; backward ends at 9
        self.assertAlmostEqual(s["exposed_ms"], 2.0)
        self.assertAlmostEqual(s["step_ms"], 3 + 9 + 2 + 0.5)

    def test_stolen_processor_time_lengthens_backward(self):
        s = m.simulate_step(self.TIMING, MIB, lambda n: 1e-3, steal_s=lambda n: 0.5e-3)
        self.assertAlmostEqual(s["stolen_ms"], 1.0)
        self.assertAlmostEqual(s["step_ms"], 3 + 9 + 1 + 0.5)

    def test_the_whole_step_time_rescales_the_layers(self):
        timing = dict(self.TIMING, step_ms=2 * 12.5)  # layers and update add up to 12.5
        s = m.simulate_step(timing, MIB, lambda n: 0.0)
        self.assertAlmostEqual(s["step_ms"], 25.0)

    def test_efficiency_is_one_without_communication_and_falls_with_it(self):
        self.assertAlmostEqual(m.efficiency(self.TIMING, MIB, lambda n: 0.0), 1.0)
        self.assertAlmostEqual(m.efficiency(self.TIMING, MIB, lambda n: 4e-3), 12.5 / 14.5)


class LinkFit(unittest.TestCase):
    def test_alpha_and_beta_come_back_from_exact_ring_times(self):
        link = m.Link(alpha=30e-6, beta=0.125e9)
        rows = {str(n): {"s": m.ring_allreduce_s(n, 2, link)} for n in (65536, 1 << 20, 1 << 24)}
        fit = m.fit_link(rows, 2, "s")
        self.assertAlmostEqual(fit.alpha, link.alpha, places=9)
        self.assertAlmostEqual(fit.beta / link.beta, 1.0, places=6)


if __name__ == "__main__":
    unittest.main()
