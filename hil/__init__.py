"""Kagiya bench (``kagiya.hil``): virtual and real lock targets and the scenario suite."""
