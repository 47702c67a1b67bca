"""causalmim: neural individual treatment effect estimation with mutual-information minimization."""

__version__ = "0.1.0.dev0"
