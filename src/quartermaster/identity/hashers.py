"""Argon2id password hashing with costs from the environment.

Production keeps Django's defaults; the test suite lowers the memory cost (QM_ARGON2_MEMORY_KIB)
so that hundreds of logins stay fast. Hashes record their own parameters, so a hash made with
one setting still verifies under another.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher

from quartermaster.config import env_int


class Argon2Hasher(Argon2PasswordHasher):
    time_cost = env_int("QM_ARGON2_TIME_COST", Argon2PasswordHasher.time_cost)
    memory_cost = env_int("QM_ARGON2_MEMORY_KIB", Argon2PasswordHasher.memory_cost)
    parallelism = env_int("QM_ARGON2_PARALLELISM", Argon2PasswordHasher.parallelism)
