"""A local, scripted target for the demo, the end-to-end script, tests and benchmarks.

`manage.py demo_target` serves scenarios on 127.0.0.1 (healthy, flaky, slow, down, recovering,
and a TLS port whose certificate expires soon) and pushes deterministic cpu, memory and
error-rate samples to the product's metrics API. Same seed, same behaviour: the flaky
scenario's n-th answer and the n-th metric sample depend only on the seed and n.
"""
