"""Settings for the auth benchmark: the product's settings plus one bare DRF view as the reference."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_urls"
# The seed's 60 requests/minute would turn a throughput benchmark into a 429 benchmark.
RATE_LIMITS_ENABLED = False
