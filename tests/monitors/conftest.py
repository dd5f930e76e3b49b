# The outbound guard's fixtures: names the test resolves, a loopback stand-in for a public
# address, a pair of listeners that shows which answer was connected to (tests/core/names.py).
from tests.core.names import loopback_stand_in, names, pin_pair  # noqa: F401
