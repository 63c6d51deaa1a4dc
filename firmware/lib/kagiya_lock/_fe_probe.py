"""Viper availability probe (internal): importing this fails where viper is missing."""

import micropython


@micropython.viper
def probe() -> int:
    x = int(1)
    return x + 2
