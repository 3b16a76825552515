from django.contrib.auth.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 with test-sized costs: same algorithm and format, a fraction of the CPU time."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1


class CountingArgon2PasswordHasher(FastArgon2PasswordHasher):
    """Counts how often a password is hashed or verified, so a test can see the hasher ran."""

    runs = 0

    def encode(self, password, salt):
        type(self).runs += 1
        return super().encode(password, salt)

    def verify(self, password, encoded):
        type(self).runs += 1
        return super().verify(password, encoded)
